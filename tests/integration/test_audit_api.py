"""The node's auditor routes (GET /chain/export, GET /proofs/tx/{id}) and the CLI that uses
them against one in-process node."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import node.http.api
from cli.main import cli
from danangchain.audit import ChainAuditor
from danangchain.export import ExportReader
from danangchain.proof import check_inclusion_proof, decode_proof_json
from danangchain.transaction import MemberAdmitBody
from tests.unit.audit_fixtures import audit_export

from .conftest import (
    AUDITOR,
    BUSINESS,
    HOUSEHOLD,
    OUTSIDER,
    REGISTRAR,
    Keystore,
    Node,
    address_of,
    encode_signed,
)
from .test_api import make_record_body


async def commit_records(node: Node, count: int) -> list[str]:
    """Commit `count` household records, one block each; return their ids."""
    tx_ids = []
    for nonce in range(1, count + 1):
        body = make_record_body(f"record {nonce}", address_of(BUSINESS))
        tx_ids.append(await node.submit_ok(encode_signed(HOUSEHOLD, nonce, body)))
        node.produce_block()
    return tx_ids


async def fetch_export(node: Node) -> bytes:
    """GET /chain/export as the auditor and return the whole body."""
    response = await node.client.get(
        "/chain/export", headers=node.sign_read("/chain/export", AUDITOR)
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    return await response.read()


async def run_cli(*args: str) -> Result:
    """Run the CLI in a thread, so that the node in this event loop can answer it."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


def url_of(node: Node) -> str:
    """Return the base URL of the node's test server."""
    return str(node.client.make_url("")).rstrip("/")


async def test_chain_export_streams_a_chain_that_verifies(members_node: Node) -> None:
    await commit_records(members_node, 3)
    data = await fetch_export(members_node)
    summary = audit_export(data, members_node.genesis.hash)
    assert summary.tip == members_node.ledger.tip
    assert summary.heights_checked == 4 and summary.transactions_checked == 5


async def test_chain_export_from_a_height_streams_only_the_blocks_from_there(
    members_node: Node,
) -> None:
    await commit_records(members_node, 3)
    whole = list(ExportReader(io.BytesIO(await fetch_export(members_node)).read))
    path = "/chain/export?from=3"
    response = await members_node.client.get(path, headers=members_node.sign_read(path, AUDITOR))
    assert response.status == 200
    reader = ExportReader(io.BytesIO(await response.read()).read, first_height=3)
    assert list(reader) == whole[2:]
    assert reader.claimed_tip == members_node.ledger.tip
    for bad in ("0", "6", "x"):
        path = f"/chain/export?from={bad}"
        answer = await members_node.client.get(path, headers=members_node.sign_read(path, AUDITOR))
        assert answer.status == 400
        assert (await answer.json())["error"] == "bad_height"


async def test_chain_export_of_a_fresh_node_is_the_genesis_alone(node: Node) -> None:
    data = await fetch_export(node)
    reader = ExportReader(io.BytesIO(data).read)
    assert list(reader) == []
    auditor = ChainAuditor(reader.header.genesis, node.genesis.hash)
    assert reader.claimed_tip is not None
    assert auditor.finish(reader.claimed_tip).heights_checked == 0


async def test_chain_export_in_small_chunks_is_the_same_stream(
    members_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    await commit_records(members_node, 2)
    whole = await fetch_export(members_node)
    monkeypatch.setattr(node.http.api, "EXPORT_CHUNK_SIZE", 1)
    assert await fetch_export(members_node) == whole


async def test_proof_of_a_committed_transaction_checks_offline(members_node: Node) -> None:
    tx_ids = await commit_records(members_node, 2)
    path = f"/proofs/tx/{tx_ids[1]}"
    response = await members_node.client.get(path, headers=members_node.sign_read(path, HOUSEHOLD))
    assert response.status == 200
    proof = decode_proof_json(await response.text())
    proven = check_inclusion_proof(proof, members_node.genesis.hash)
    assert proven.tx_id.hex() == tx_ids[1] and proven.height == 3 and proven.index == 0


async def test_proof_of_an_unknown_or_pending_transaction_is_not_found(node: Node) -> None:
    status, document = await node.get(f"/proofs/tx/{'ab' * 32}")
    assert status == 404 and document["message"] == "no such transaction"
    pending = await node.submit_ok(
        encode_signed(REGISTRAR, 1, MemberAdmitBody(address_of(HOUSEHOLD), "household"))
    )
    status, document = await node.get(f"/proofs/tx/{pending}")
    assert status == 404 and "pending" in document["message"]
    status, document = await node.get("/proofs/tx/nothex")
    assert status == 400 and document["error"] == "bad_id"


# The CLI against the node


async def test_verify_from_a_live_node(members_node: Node, keystore: Keystore) -> None:
    await commit_records(members_node, 2)
    pin = members_node.genesis.hash.hex()
    url = url_of(members_node)
    result = await run_cli(
        "audit",
        "verify",
        "--node",
        url,
        *keystore.options("auditor"),
        "--genesis-hash",
        pin,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["heights_checked"] == 3
    assert report["tip_hash"] == members_node.ledger.tip.block_hash.hex()


async def test_export_from_a_live_node_then_verify_the_file(
    members_node: Node, tmp_path: Path, keystore: Keystore
) -> None:
    await commit_records(members_node, 2)
    out = tmp_path / "chain.dnx"
    url = url_of(members_node)
    made = await run_cli(
        "chain", "export", "--node", url, *keystore.options("auditor"), "--out", str(out)
    )
    assert made.exit_code == 0, made.output
    assert not (tmp_path / "chain.dnx.partial").exists()
    verified = await run_cli("audit", "verify", "--file", str(out), "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["heights_checked"] == 3


async def test_prove_then_check_the_proof_and_a_tampered_copy(
    members_node: Node, tmp_path: Path, keystore: Keystore
) -> None:
    (tx_id,) = await commit_records(members_node, 1)
    proof_file = tmp_path / "record.proof"
    url = url_of(members_node)
    made = await run_cli(
        "audit",
        "prove",
        tx_id,
        "--node",
        url,
        *keystore.options("household"),
        "--out",
        str(proof_file),
    )
    assert made.exit_code == 0, made.output
    pin = members_node.genesis.hash.hex()
    checked = await run_cli(
        "audit", "check-proof", str(proof_file), "--genesis-hash", pin, "--json"
    )
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["tx_id"] == tx_id

    document = json.loads(proof_file.read_text())
    document["header"]["time_ms"] += 1  # a header other than the one the validators signed
    proof_file.write_text(json.dumps(document))
    refused = await run_cli("audit", "check-proof", str(proof_file), "--genesis-hash", pin)
    assert refused.exit_code == 1 and "INVALID" in refused.stdout

    wrong_pin = await run_cli("audit", "check-proof", str(proof_file), "--genesis-hash", "zz")
    assert wrong_pin.exit_code == 2 and "64 hex" in wrong_pin.stderr


async def test_the_export_and_a_records_proof_need_a_signed_read_by_one_entitled(
    members_node: Node, tmp_path: Path, keystore: Keystore
) -> None:
    (tx_id,) = await commit_records(members_node, 1)
    status, document = await members_node.get("/chain/export", as_key=None)
    assert (status, document["error"]) == (401, "auth_required")
    status, document = await members_node.get("/chain/export", as_key=HOUSEHOLD)
    assert (status, document["error"]) == (403, "not_allowed")
    status, document = await members_node.get(f"/proofs/tx/{tx_id}", as_key=None)
    assert (status, document["error"]) == (401, "auth_required")
    url = url_of(members_node)
    unsigned = await run_cli("chain", "export", "--node", url, "--out", str(tmp_path / "c.dnx"))
    assert unsigned.exit_code == 2 and "--from" in unsigned.stderr
    household = await run_cli("audit", "verify", "--node", url, *keystore.options("household"))
    assert household.exit_code == 2 and "not allowed" in household.stderr
    prove = ("audit", "prove", tx_id, "--node", url, *keystore.options("outsider"))
    outsider = await run_cli(*prove, "--out", str(tmp_path / "p"))
    assert outsider.exit_code == 2 and "unknown_key" in outsider.stderr, outsider.output
    await members_node.submit_ok(
        encode_signed(REGISTRAR, 3, MemberAdmitBody(address_of(OUTSIDER), "household"))
    )
    members_node.produce_block()
    third = await run_cli(*prove, "--out", str(tmp_path / "p"))
    assert third.exit_code == 1 and "not allowed" in third.stderr, third.output
    assert not (tmp_path / "p").exists()
