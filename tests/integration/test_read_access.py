"""Signed reads through one node's API: 401 unsigned or refused, 403 to a member a record
does not concern, 200 to its parties and auditors; the access log each read leaves."""

from __future__ import annotations

import asyncio
import json
import os
import time

from click.testing import CliRunner, Result

from cli.main import cli
from danangchain import ed25519
from danangchain.read_access import encode_authorization, sign_read
from danangchain.transaction import MemberAdmitBody, MemberRevokeBody

from .conftest import (
    AUDITOR,
    BUSINESS,
    CHAIN_ID,
    HOUSEHOLD,
    OUTSIDER,
    REGISTRAR,
    Keystore,
    Node,
    StartNode,
    address_of,
    encode_signed,
    text_address_of,
)
from .test_api import make_record_body

MEMO = "rice for the Nguyen family, 20 kg"
PRIVATE = {"amount", "counterparty", "doc_hash", "memo"}
STRANGER = ed25519.signing_key_from_seed(bytes([42]) * 32)  # the key of no member


async def commit_invoice(node: Node) -> str:
    """Commit the business's invoice naming the household, and admit a third member
    (the outsider, a household); return the record's id."""
    body = make_record_body(MEMO, address_of(HOUSEHOLD))
    record_id = await node.submit_ok(encode_signed(BUSINESS, 1, body))
    await node.submit_ok(
        encode_signed(REGISTRAR, 3, MemberAdmitBody(address_of(OUTSIDER), "household"))
    )
    node.produce_block()
    return record_id


def signed_at(
    path: str, time_ms: int, key: ed25519.SigningKey = AUDITOR, chain: str = CHAIN_ID
) -> dict[str, str]:
    """Return the header of a read of `path` signed at a time, by a key, for a chain."""
    read = sign_read(key, chain, "GET", path, time_ms, os.urandom(16))
    return {"Authorization": encode_authorization(read)}


async def get_refused(node: Node, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """GET with the given headers; return the status and error code."""
    response = await node.client.get(path, headers=headers)
    return response.status, (await response.json())["error"]


async def test_a_record_is_read_by_its_parties_and_auditors_only(members_node: Node) -> None:
    node = members_node
    record_id = await commit_invoice(node)
    path = f"/records/{record_id}"
    response = await node.client.get(path)
    assert response.status == 401
    assert (await response.json())["error"] == "auth_required"
    assert response.headers["WWW-Authenticate"].startswith("DanangChain")
    for reader in (HOUSEHOLD, BUSINESS, AUDITOR):
        record = await node.get_ok(path, as_key=reader)
        assert record["memo"] == MEMO and record["amount"] == 250_000
    status, document = await node.get(path, as_key=OUTSIDER)
    assert (status, document["error"]) == (403, "not_allowed")


async def test_an_account_is_read_by_its_member_and_auditors_only(members_node: Node) -> None:
    node = members_node
    await commit_invoice(node)
    path = f"/accounts/{text_address_of(HOUSEHOLD)}"
    assert (await node.get(path, as_key=None))[0] == 401
    assert (await node.get_ok(path, as_key=HOUSEHOLD))["role"] == "household"
    assert (await node.get_ok(path, as_key=AUDITOR))["records"]
    assert (await node.get(path, as_key=BUSINESS))[0] == 403


async def test_blocks_and_transactions_are_open_but_withhold_a_records_private_fields(
    members_node: Node,
) -> None:
    node = members_node
    record_id = await commit_invoice(node)
    block = await node.get_ok("/blocks/2", as_key=None)
    [record] = [tx for tx in block["txs"] if tx["tx_id"] == record_id]
    assert record["body"]["category"] == "invoice"
    assert not PRIVATE & set(record["body"]) and set(record["body"]["withheld"]) == PRIVATE
    assert MEMO not in str(block)
    shown = await node.get_ok("/blocks/2", as_key=HOUSEHOLD)
    [record] = [tx for tx in shown["txs"] if tx["tx_id"] == record_id]
    assert record["body"]["memo"] == MEMO
    # The outsider sees the block, but not the record that does not concern it.
    assert MEMO not in str(await node.get_ok("/blocks/2", as_key=OUTSIDER))

    status = await node.get_ok(f"/txs/{record_id}", as_key=None)
    assert status["status"] == "committed" and "memo" not in status["tx"]["body"]
    assert (await node.get_ok(f"/txs/{record_id}", as_key=BUSINESS))["tx"]["body"]["memo"] == MEMO
    assert (await node.get(f"/txs/{record_id}", as_key=OUTSIDER))[0] == 403


async def test_each_read_by_another_member_is_in_the_access_log_and_nothing_else(
    members_node: Node, start_node: StartNode
) -> None:
    node = members_node
    record_id = await commit_invoice(node)
    await node.get_ok(f"/records/{record_id}", as_key=HOUSEHOLD)  # its own: not logged
    await node.get(f"/records/{record_id}", as_key=OUTSIDER)  # refused: not logged
    await node.get(f"/records/{record_id}", as_key=None)  # refused: not logged
    await node.get_ok(f"/records/{record_id}", as_key=AUDITOR)
    await node.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}", as_key=AUDITOR)
    await node.get_ok("/blocks/2", as_key=OUTSIDER)  # nothing of the household's shown
    log = await node.get_ok("/access-log", as_key=HOUSEHOLD)
    assert log["address"] == text_address_of(HOUSEHOLD)
    entries = [(e["reader"], e["reader_role"], e["route"], e["target"]) for e in log["entries"]]
    auditor = text_address_of(AUDITOR)
    assert entries == [
        (auditor, "auditor", "account", text_address_of(HOUSEHOLD)),
        (auditor, "auditor", "record", record_id),
    ]
    # The business is the other party: the auditor's read and the household's are its log.
    business_log = await node.get_ok("/access-log", as_key=BUSINESS)
    readers = [(e["reader"], e["target"]) for e in business_log["entries"]]
    assert readers == [(auditor, record_id), (text_address_of(HOUSEHOLD), record_id)]
    assert (await node.get("/access-log", as_key=None))[0] == 401
    assert (await node.get_ok("/access-log", as_key=AUDITOR))["count"] == 0

    await node.stop()
    reopened = await start_node(folder=node.folder)
    assert (await reopened.get_ok("/access-log", as_key=HOUSEHOLD))["entries"] == log["entries"]


async def test_a_chain_export_is_in_every_members_access_log(members_node: Node) -> None:
    node = members_node
    await commit_invoice(node)
    response = await node.client.get(
        "/chain/export", headers=node.sign_read("/chain/export", AUDITOR)
    )
    assert response.status == 200
    await response.read()
    for member in (HOUSEHOLD, BUSINESS, OUTSIDER):
        [entry] = (await node.get_ok("/access-log", as_key=member))["entries"]
        assert (entry["route"], entry["target"], entry["reader_role"]) == (
            "chain_export",
            "1-2",
            "auditor",
        )


async def test_a_followers_next_exports_extend_its_entry_instead_of_adding_one(
    members_node: Node,
) -> None:
    node = members_node
    await commit_invoice(node)

    async def export(path: str) -> None:
        response = await node.client.get(path, headers=node.sign_read(path, AUDITOR))
        assert response.status == 200
        await response.read()

    await export("/chain/export")
    await node.submit_ok(encode_signed(HOUSEHOLD, 1, make_record_body("later")))
    node.produce_block()
    await export("/chain/export?from=3")
    await export("/chain/export?from=4")  # nothing new: not logged
    targets = [e["target"] for e in (await node.get_ok("/access-log", as_key=BUSINESS))["entries"]]
    assert targets == ["1-3"]
    await export("/chain/export?from=2")  # not the next heights: an entry of its own
    targets = [e["target"] for e in (await node.get_ok("/access-log", as_key=BUSINESS))["entries"]]
    assert targets == ["2-3", "1-3"]


async def test_a_replayed_stale_forged_or_foreign_read_is_refused_and_not_logged(
    members_node: Node,
) -> None:
    node = members_node
    record_id = await commit_invoice(node)
    path = f"/records/{record_id}"
    headers = node.sign_read(path, AUDITOR)
    assert (await node.client.get(path, headers=headers)).status == 200
    assert await get_refused(node, path, headers) == (401, "replayed_request")

    now = time.time_ns() // 1_000_000
    assert await get_refused(node, path, signed_at(path, now - 120_000)) == (401, "stale_request")
    assert await get_refused(node, path, signed_at(path, now + 120_000)) == (401, "stale_request")
    other_path = signed_at(f"/records/{'ab' * 32}", now)
    assert await get_refused(node, path, other_path) == (401, "bad_signature")
    other_chain = signed_at(path, now, chain="danang-elsewhere")
    assert await get_refused(node, path, other_chain) == (401, "bad_signature")
    forged = headers["Authorization"][:-4] + "0000"
    assert await get_refused(node, path, {"Authorization": forged}) == (401, "bad_signature")
    garbled = {"Authorization": "DanangChain key=zz"}
    assert await get_refused(node, path, garbled) == (401, "bad_signature")
    stranger = signed_at(path, now, key=STRANGER)
    assert await get_refused(node, path, stranger) == (401, "unknown_key")
    # Only the first read was answered: it alone is in the household's log.
    assert (await node.get_ok("/access-log", as_key=HOUSEHOLD))["count"] == 1
    counters = node.ledger.counters
    assert counters["refused read: replayed_request"] == 1
    assert counters["refused read: stale_request"] == 2


async def test_a_revoked_members_key_reads_nothing(members_node: Node) -> None:
    node = members_node
    record_id = await commit_invoice(node)
    await node.submit_ok(encode_signed(REGISTRAR, 4, MemberRevokeBody(address_of(BUSINESS))))
    node.produce_block()
    status, document = await node.get(f"/records/{record_id}", as_key=BUSINESS)
    assert (status, document["error"]) == (401, "revoked_key")


# The CLI


async def run_cli(*args: str) -> Result:
    """Run the CLI in a thread, so that the node in this event loop can answer it."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_query_signs_with_from_and_the_household_sees_who_read(
    members_node: Node, keystore: Keystore
) -> None:
    node = members_node
    record_id = await commit_invoice(node)
    url = str(node.client.make_url("")).rstrip("/")
    unsigned = await run_cli("query", "record", record_id, "--node", url)
    assert unsigned.exit_code == 2 and "--from" in unsigned.stderr
    assert "Traceback" not in unsigned.output
    own = await run_cli("query", "record", record_id, "--node", url, *keystore.options("household"))
    assert own.exit_code == 0, own.output
    assert f"Memo: {MEMO}" in own.stdout
    third = await run_cli(
        "query", "record", record_id, "--node", url, *keystore.options("outsider")
    )
    assert third.exit_code == 1 and "not allowed" in third.stderr
    audited = await run_cli(
        "query", "record", record_id, "--node", url, *keystore.options("auditor"), "--json"
    )
    assert audited.exit_code == 0 and json.loads(audited.stdout)["memo"] == MEMO
    block = await run_cli("query", "block", "2", "--node", url)
    assert block.exit_code == 0 and MEMO not in block.stdout

    log = await run_cli("query", "access-log", "--node", url, *keystore.options("household"))
    assert log.exit_code == 0, log.output
    assert f"1 reads of the data of {text_address_of(HOUSEHOLD)}" in log.stdout
    assert f"{text_address_of(AUDITOR)} (auditor) read record {record_id}" in log.stdout
    as_json = await run_cli(
        "query", "access-log", "--node", url, *keystore.options("household"), "--json"
    )
    [entry] = json.loads(as_json.stdout)["entries"]
    assert (entry["reader"], entry["route"]) == (text_address_of(AUDITOR), "record")
    missing = await run_cli("query", "access-log", "--node", url)
    assert missing.exit_code == 2 and "--from" in missing.stderr
