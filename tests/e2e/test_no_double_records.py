"""Ctrl-C during `tx record --wait` never leads to a second record: a real CLI process is
interrupted with SIGINT while its transaction cannot commit yet, the same command is run
again, and the chain holds one record."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli.client import NodeClient, ReadSigner
from node.keyfile import read_keystore, unlock_key
from tests.e2e.conftest import PASSWORD, Network, run_cli, wait_for

pytestmark = pytest.mark.e2e


def test_ctrl_c_during_wait_then_the_same_command_again_leaves_one_record(
    two_validators: Network, tmp_path: Path
) -> None:
    net = two_validators
    node_url = net.made["nodes"][0]["api_url"]
    keystore = Path(net.made["keystore"])
    signing = ["--keystore", str(keystore), "--password-file", str(net.password_file)]
    made = run_cli("keys", "new", "shop", *signing, "--json")
    assert made.returncode == 0, made.stderr
    shop = json.loads(made.stdout)["address"]
    admitted = run_cli(
        "member", "admit", shop, "--role", "business", "--from", "registrar",
        "--wait", "--node", node_url, *signing,
    )  # fmt: skip
    assert admitted.returncode == 0, admitted.stderr
    # The shop reads its own account: a member's data is read signed with its key.
    shop_key = unlock_key(read_keystore(keystore / "shop.json"), PASSWORD)
    reader = NodeClient(node_url, signer=ReadSigner(shop_key))
    document = tmp_path / "invoice-118.pdf"
    document.write_bytes(b"%PDF invoice 118, 1,500,000 VND")
    command = [
        "tx", "record", "--from", "shop", "--category", "invoice", "--doc", str(document),
        "--amount", "1500000", "--node", node_url, *signing,
    ]  # fmt: skip

    # With one of two validators stopped nothing commits: the record waits, and is cut off.
    net.stop(1)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *command, "--wait", "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        account = f"/accounts/{shop}"
        wait_for(lambda: reader.get(account)["pending_txs"] == 1, 30, "the record sent")
        waiting.send_signal(signal.SIGINT)
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 130, err
    [line] = err.strip().splitlines()
    assert line.startswith("error: interrupted: transaction ")
    tx_id = line.split("transaction ", 1)[1].split(" ", 1)[0]
    assert f"danangchain query tx {tx_id}" in line and out == ""

    # Run again while it still waits: the same transaction is followed, nothing is signed.
    again = run_cli(*command, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) | {"sent_ms": 0} == {
        "already_sent": True, "kind": "sealed_record", "sent_ms": 0, "status": "pending",
        "tx_id": tx_id,
    }  # fmt: skip
    assert reader.get(account)["pending_txs"] == 1

    # Once the network commits again, the same command reports where the record is.
    net.start(1)
    done = run_cli(*command, "--wait")
    assert done.returncode == 0, done.stderr
    first, said = done.stdout.strip().splitlines()
    assert first.startswith(f"sealed_record {tx_id}: committed at height ")
    assert said.startswith("already sent at ") and "--again" in said
    assert reader.get(account)["records"] == [tx_id]

    # Without the outbox (another machine, or --again) the node itself refuses it: the
    # sealed record's document commitment is the same for the same member and document.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(keystore, elsewhere, ignore=shutil.ignore_patterns("outbox"))
    command[command.index(str(keystore))] = str(elsewhere)
    refused = run_cli(*command, "--wait")
    assert refused.returncode == 1
    assert f"already recorded this document: record {tx_id} at height" in refused.stderr
    assert reader.get(account)["records"] == [tx_id]
