"""End to end: a real node process audited through the real CLI from its API, an export
file and (once stopped) its data folder; a proof made and checked; a node seeded from
the export serving the same chain."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cli.client import NodeClient
from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.transaction import MemberAdmitBody
from node.keyfile import generate_signing_key, save_key
from tests.e2e.conftest import PASSWORD, LocalNode, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def ok(result: Any) -> Any:
    """Assert a --json command succeeded and return its report."""
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def commit_a_few_records(node: LocalNode) -> list[str]:
    """Admit a household and a business, have the business record three invoices."""
    addresses = {}
    for name, role in (("household", "household"), ("business", "business")):
        key = generate_signing_key()
        saved = save_key(node.keystore / f"{name}.json", name, key, PASSWORD, kdf_n=2**10)
        addresses[name] = encode_address(compute_address(key.public_key))
        assert saved.encryption_public_key is not None
        # With their encryption keys published, the business's records are sealed ones:
        # the auditor below checks a chain whose amounts and memos it cannot read.
        ok(
            node.cli(
                "member",
                "admit",
                addresses[name],
                "--encryption-key",
                saved.encryption_public_key.hex(),
                "--role",
                role,
                "--from",
                "registrar",
                "--wait",
                "--json",
            )
        )
    tx_ids = []
    for number in range(3):
        recorded = ok(
            node.cli(
                "tx",
                "record",
                "--from",
                "business",
                "--category",
                "invoice",
                "--doc-hash",
                f"{number:064x}",
                "--counterparty",
                addresses["household"],
                "--wait",
                "--json",
            )
        )
        tx_ids.append(recorded["tx_id"])
    return tx_ids


def test_audit_a_real_node_from_every_source(local_node: LocalNode, tmp_path: Path) -> None:
    tx_ids = commit_a_few_records(local_node)
    pin = local_node.made["genesis_hash"]
    status = NodeClient(local_node.url).get("/status")
    height, tip_hash = status["height"], status["latest_block_hash"]
    assert height >= 4

    local_node.admit("auditor", "auditor")  # who reads the whole chain
    auditor = local_node.signing_options("auditor")
    export = tmp_path / "chain.dnx"
    made = ok(
        run_cli(
            "chain", "export", "--node", local_node.url, *auditor, "--out", str(export), "--json"
        )
    )
    assert made["height"] > height  # the auditor's admission committed since
    height, tip_hash = made["height"], made["tip_hash"]

    reports = [
        ok(run_cli("audit", "verify", "--file", str(export), "--genesis-hash", pin, "--json")),
        ok(
            run_cli(
                "audit",
                "verify",
                "--node",
                local_node.url,
                *auditor,
                "--genesis-hash",
                pin,
                "--json",
            )
        ),
    ]

    # A running node holds its data folder: refused in one line.
    busy = run_cli("audit", "verify", "--home", str(local_node.home))
    assert busy.returncode == 2 and "in use" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1

    proof = tmp_path / "invoice.proof"
    ok(
        run_cli(
            "audit",
            "prove",
            tx_ids[1],
            "--node",
            local_node.url,
            *auditor,
            "--out",
            str(proof),
            "--json",
        )
    )
    checked = ok(run_cli("audit", "check-proof", str(proof), "--genesis-hash", pin, "--json"))
    assert checked["tx_id"] == tx_ids[1] and checked["valid"] is True
    ok(run_cli("audit", "check-proof", str(proof), "--file", str(export), "--json"))

    for process in local_node.processes:
        process.terminate()
        process.wait(20)
    reports.append(
        ok(
            run_cli(
                "audit", "verify", "--home", str(local_node.home), "--genesis-hash", pin, "--json"
            )
        )
    )
    for report in reports:
        assert report["valid"] is True and report["genesis_pinned"] is True
        assert report["heights_checked"] == height and report["tip_hash"] == tip_hash
        assert report["transactions_checked"] == 6

    document = json.loads(proof.read_text())
    document["merkle_path"] = ["00" * 32, *document["merkle_path"][1:]]
    proof.write_text(json.dumps(document))
    tampered = run_cli("audit", "check-proof", str(proof), "--genesis-hash", pin)
    assert tampered.returncode == 1 and "Merkle path" in tampered.stdout

    # A new node seeded from the export serves the same chain.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("config.toml", "genesis.json", "node_key.json"):
        shutil.copy(local_node.home / name, fresh / name)
    imported = ok(run_cli("chain", "import", "--file", str(export), "--home", str(fresh), "--json"))
    assert imported["height"] == height
    local_node.made["nodes"][0]["home"] = str(fresh)
    local_node.start()
    status = NodeClient(local_node.url).get("/status")
    assert (status["height"], status["latest_block_hash"]) == (height, tip_hash)


def test_audit_a_four_validator_network(tmp_path: Path) -> None:
    # Chains made by real BFT consensus: each node stores the certificate it committed
    # with, which need not be the quorum the next proposer carried.
    from tests.e2e.conftest import Network, record, wait_for

    network = Network(tmp_path)
    try:
        for index in range(4):
            network.start(index)
        sender = ed25519.signing_key_from_seed(bytes([77]) * 32)
        admit = network.submit(
            0, network.registrar, MemberAdmitBody(compute_address(sender.public_key), "business")
        )
        # The auditor who reads the chain: its own key, admitted with the role auditor.
        auditor_key = generate_signing_key()
        keystore = tmp_path / "auditor-keys"
        keystore.mkdir()
        save_key(keystore / "auditor.json", "auditor", auditor_key, PASSWORD, kdf_n=2**10)
        (tmp_path / "auditor-password").write_text(PASSWORD + "\n")
        auditor = ["--from", "auditor", "--keystore", str(keystore), "--password-file"]
        auditor.append(str(tmp_path / "auditor-password"))
        auditor_address = compute_address(auditor_key.public_key)
        admit_auditor = network.submit(
            0, network.registrar, MemberAdmitBody(auditor_address, "auditor")
        )
        wait_for(lambda: network.committed(0, admit), 30, "the admission")
        wait_for(lambda: network.committed(0, admit_auditor), 30, "the auditor's admission")
        txs = [network.submit(0, sender, record(n)) for n in range(12)]
        wait_for(
            lambda: all(network.committed(i, t) for i in range(4) for t in txs),
            60,
            "the records on all four nodes",
        )
        pin = network.made["genesis_hash"]
        for node in network.made["nodes"][:4]:
            report = ok(
                run_cli(
                    "audit",
                    "verify",
                    "--node",
                    node["api_url"],
                    *auditor,
                    "--genesis-hash",
                    pin,
                    "--json",
                )
            )
            assert report["valid"] and report["validators_seen"] == 4
        proof = tmp_path / "record.proof"
        ok(
            run_cli(
                "audit",
                "prove",
                txs[5],
                "--node",
                network.made["nodes"][2]["api_url"],
                *auditor,
                "--out",
                str(proof),
                "--json",
            )
        )
        assert (
            ok(run_cli("audit", "check-proof", str(proof), "--genesis-hash", pin, "--json"))[
                "signed_power"
            ]
            >= 3
        )
    finally:
        network.stop_all()
    tips = set()
    for home in network.homes[:4]:
        report = ok(
            run_cli("audit", "verify", "--home", str(home), "--genesis-hash", pin, "--json")
        )
        assert report["valid"] and report["transactions_checked"] >= 13
        tips.add((report["tip_height"], report["tip_hash"]))
    heights = {height for height, _ in tips}
    assert len(tips) == len(heights), tips  # nodes may stop a block apart, never disagree
