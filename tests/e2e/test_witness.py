"""A witness's purpose: a colluding majority's fork, from the same genesis and validator
keys, passes `audit verify` on validator signatures alone, but not against a witness that
followed the real chain; and the witness, shown the fork, halts and keeps the evidence."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.client import NodeClient
from cli.localnet import find_free_ports, start_node_process, stop_node_process, wait_until_serving
from danangchain.address import compute_address, encode_address
from danangchain.transaction import MemberAdmitBody, encode_transaction, sign_transaction
from node.keyfile import read_keystore, unlock_key
from tests.e2e.conftest import PASSWORD, run_cli, run_cli_json, wait_for

pytestmark = pytest.mark.e2e


class Fork:
    """One network's home, copied before it starts: two nodes that grow two chains."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.password_file = folder / "password"
        self.password_file.write_text(PASSWORD + "\n")
        base = find_free_ports(3)
        made = run_cli_json(
            "network", "init", str(folder / "net"), "--validators", "1",
            "--base-port", str(base), "--password-file", str(self.password_file),
        )  # fmt: skip
        self.chain_id = made["chain_id"]
        first = Path(made["nodes"][0]["home"])
        second = folder / "fork" / "node0"
        shutil.copytree(first, second)
        config = second / "config.toml"
        text = config.read_text()
        text = re.sub(rf"(?m)^port = {base}$", f"port = {base + 2}", text)
        text = re.sub(rf"(?m)^port = {base + 1}$", f"port = {base + 3}", text)
        config.write_text(text)
        self.homes = [first, second]
        self.urls = [f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 2}"]
        self.witness_url = f"http://127.0.0.1:{base + 4}"
        self.keystore = Path(made["keystore"])
        self.registrar = unlock_key(read_keystore(self.keystore / "registrar.json"), PASSWORD)
        self.nonces = [0, 0]
        self.tx_ids: list[list[str]] = [[], []]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, index: int) -> None:
        log = self.homes[index] / "node.log"
        process = start_node_process(self.homes[index], self.password_file, log)
        self.processes.append(process)
        wait_until_serving(process, self.urls[index], log)

    def admit(self, index: int, address: bytes, role: str = "household") -> str:
        """Have the registrar admit an address on one chain; return the transaction id."""
        self.nonces[index] += 1
        tx = sign_transaction(
            self.registrar, self.chain_id, self.nonces[index], MemberAdmitBody(address, role)
        )
        client = NodeClient(self.urls[index])
        tx_id = str(client.post_tx(encode_transaction(tx))["tx_id"])
        wait_for(lambda: client.get(f"/txs/{tx_id}")["status"] == "committed", 20, "commit")
        self.tx_ids[index].append(tx_id)
        return tx_id

    def height(self, index: int) -> int:
        return int(NodeClient(self.urls[index]).get("/status")["height"])


def start_witness(fork: Fork, home: Path, *node_urls: str) -> subprocess.Popen[bytes]:
    """Start `witness start` cosigning every block, and wait until it serves."""
    nodes = [part for url in node_urls for part in ("--node", url)]
    command = [
        sys.executable, "-m", "cli.main", "witness", "start", *nodes,
        "--key", "inspectorate", "--keystore", str(fork.folder / "keys"),
        "--password-file", str(fork.password_file), "--home", str(home),
        "--listen", fork.witness_url.removeprefix("http://"),
        "--every-blocks", "1", "--poll-seconds", "0.1",
    ]  # fmt: skip
    with (fork.folder / "witness.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: witness_status(fork) if process.poll() is None else True, 30, "witness")
    assert process.poll() is None, (fork.folder / "witness.log").read_text()
    return process


def reader(fork: Fork) -> list[str]:
    """Return the options that sign a read with the witness's key (the export needs it)."""
    return [
        "--from", "inspectorate", "--keystore", str(fork.folder / "keys"),
        "--password-file", str(fork.password_file),
    ]  # fmt: skip


def witness_status(fork: Fork) -> dict[str, Any]:
    return NodeClient(fork.witness_url, timeout_s=5).get("/status")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(20)


@pytest.fixture
def fork(tmp_path: Path) -> Iterator[Fork]:
    made = Fork(tmp_path)
    try:
        yield made
    finally:
        for process in made.processes:
            stop_node_process(process)


def test_a_witness_catches_a_fork_signed_by_the_same_validator_keys(fork: Fork) -> None:
    key = run_cli_json(
        "keys", "new", "inspectorate", "--keystore", str(fork.folder / "keys"),
        "--password-file", str(fork.password_file),
    )  # fmt: skip
    witness_key = str(key["public_key"])
    fork.start(0)
    fork.start(1)
    home = fork.folder / "witness"
    # The witness is a member of the first chain: it reads the chain's export with its key
    # and its checkpoints go on chain too. On the fork its key is an auditor's: it reads
    # the export there (to catch the fork) but submits nothing.
    fork.admit(0, compute_address(bytes.fromhex(witness_key)), "witness")
    fork.admit(1, compute_address(bytes.fromhex(witness_key)), "auditor")
    witness = start_witness(fork, home, fork.urls[0])
    try:
        for number in range(3):
            fork.admit(0, bytes([1, number]) * 10)
            fork.admit(1, bytes([2, number]) * 10)
        # Blocks that hold only the witness's own checkpoints are not cosigned: wait for a
        # checkpoint at or above the last admission's height, whichever blocks those are.
        last = int(NodeClient(fork.urls[0]).get(f"/txs/{fork.tx_ids[0][-1]}")["height"])
        status = wait_for(
            lambda: (
                (s := witness_status(fork))["latest_checkpoint"]
                and s["latest_checkpoint"]["height"] >= last
                and s
            ),
            30,
            "the witness to cosign the last admission's block",
        )
        assert status["halted"] is False and status["evidence"] is None
        assert status["height"] >= last >= 4
        latest = NodeClient(fork.witness_url).get("/checkpoints/latest")
        assert NodeClient(fork.witness_url).get(f"/checkpoints/{latest['height']}") == latest
        on_chain = wait_for(lambda: checkpoint_txs(fork), 30, "a checkpoint on chain")
        assert on_chain[0]["sender"] == encode_address(compute_address(bytes.fromhex(witness_key)))

        # Both chains verify on the validators' signatures; only the first is witnessed.
        exports = []
        for index in (0, 1):
            out = fork.folder / f"chain{index}.dnx"
            run_cli_json(
                "chain", "export", "--node", fork.urls[index], *reader(fork), "--out", str(out)
            )
            exports.append(out)
            assert run_cli("audit", "verify", "--file", str(out)).returncode == 0
        pin = f"{witness_key}@{fork.witness_url}"
        witnessed = run_cli(
            "audit", "verify", "--file", str(exports[0]), "--witness", pin,
            "--min-witnesses", "1", "--json",
        )  # fmt: skip
        assert witnessed.returncode == 0, witnessed.stderr
        assert json.loads(witnessed.stdout)["witnesses"]["witnessed_height"] >= 4
        forged = run_cli(
            "audit", "verify", "--file", str(exports[1]), "--witness", pin,
            "--min-witnesses", "1",
        )  # fmt: skip
        assert forged.returncode == 1, forged.stderr
        first_line = forged.stdout.splitlines()[0]
        assert first_line.startswith("INVALID at height 1: block 1 "), first_line
        assert "is not the block witness" in first_line
        check_proofs(fork, witness_key, pin)
        check_file_proofs(fork, witness_key, pin)
        signed_before = witness_status(fork)["checkpoints"]
        assert stop(witness) == 0

        # Fed the fork's blocks at heights it cosigned, the witness halts with evidence.
        witness = start_witness(fork, home, fork.urls[0], fork.urls[1])
        status = wait_for(
            lambda: (s := witness_status(fork))["halted"] and s, 30, "the witness to halt"
        )
        evidence = status["evidence"]
        assert evidence["height"] == 1 and evidence["detected_from"] == fork.urls[1]
        assert (
            evidence["cosigned"]["checkpoint"]["block_hash"]
            != evidence["conflicting"]["block_hash"]
        )
        assert len(evidence["validators_who_signed_both"]) == 1
        assert NodeClient(fork.witness_url).get("/evidence") == evidence
        assert (home / "evidence.json").exists()
        log = (fork.folder / "witness.log").read_text()
        assert "WITNESS HALTED" in log
        # It signs nothing more, even as the first chain grows and across a restart.
        fork.admit(0, bytes([3]) * 20)
        assert stop(witness) == 0
        witness = start_witness(fork, home, fork.urls[0])
        status = witness_status(fork)
        assert status["halted"] is True and status["checkpoints"] == signed_before
    finally:
        if witness.poll() is None:
            stop(witness)


def check_proofs(fork: Fork, witness_key: str, pin: str) -> None:
    """A proof from the witnessed chain carries and passes the witness's cosignature; one
    from the fork is refused when made and when checked."""
    genesis = run_cli_json("audit", "verify", "--node", fork.urls[0], *reader(fork))
    genesis = genesis["genesis_hash"]
    proof = fork.folder / "first.proof"
    made = run_cli(
        "audit", "prove", fork.tx_ids[0][1], "--node", fork.urls[0], "--out", str(proof),
        "--witness", pin,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(proof.read_text())["witnesses"]["cosignatures"]
    checked = run_cli(
        "audit", "check-proof", str(proof), "--genesis-hash", genesis,
        "--witness", witness_key, "--json",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert witness_key in json.loads(checked.stdout)["witnesses"]["witnesses"]
    refused = run_cli(
        "audit", "prove", fork.tx_ids[1][0], "--node", fork.urls[1], "--out",
        str(fork.folder / "fork.proof"), "--witness", pin,
    )  # fmt: skip
    assert refused.returncode == 1 and "do not vouch" in refused.stderr, refused.stderr
    assert not (fork.folder / "fork.proof").exists()
    unwitnessed = fork.folder / "fork-plain.proof"
    made = run_cli(
        "audit", "prove", fork.tx_ids[1][0], "--node", fork.urls[1], "--out", str(unwitnessed)
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    checked = run_cli(
        "audit", "check-proof", str(unwitnessed), "--genesis-hash", genesis, "--witness", pin
    )  # fmt: skip
    assert checked.returncode == 1 and checked.stdout.startswith("INVALID proof: "), checked.stdout
    bad = run_cli(
        "audit", "check-proof", str(proof), "--genesis-hash", genesis, "--witness", "ab@x"
    )  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def check_file_proofs(fork: Fork, witness_key: str, pin: str) -> None:
    """A file anchored on the witnessed chain checks with the witness required; the same
    file anchored on the fork does not. (The registrar's anchor bumps its nonce on each
    chain: the Fork's own counters follow.)"""
    genesis = run_cli_json("audit", "verify", "--node", fork.urls[0], *reader(fork))
    genesis = genesis["genesis_hash"]
    dataset = fork.folder / "dataset"
    dataset.mkdir()
    (dataset / "station-7.csv").write_text("2026-12-01T10:00,pm2.5,12\n")
    signing = ["--keystore", str(fork.keystore), "--password-file", str(fork.password_file)]
    proofs = []
    for index in (0, 1):
        manifest = fork.folder / f"air-{index}.anchor.json"
        made = run_cli_json(
            "anchor", str(dataset), "--from", "registrar", "--name", f"air-{index}",
            "--manifest", str(manifest), "--node", fork.urls[index], "--wait", *signing,
        )  # fmt: skip
        fork.nonces[index] += 1
        if index == 0:
            wait_for_checkpoint(fork, int(made["height"]))
        proof = fork.folder / f"air-{index}.proof"
        witnessed = ["--witness", pin] if index == 0 else []
        made = run_cli(
            "audit", "prove-file", str(dataset / "station-7.csv"), "--manifest", str(manifest),
            "--out", str(proof), "--node", fork.urls[index], *witnessed,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        proofs.append(proof)
    checked = run_cli(
        "audit", "check-file", str(dataset / "station-7.csv"), str(proofs[0]),
        "--genesis-hash", genesis, "--witness", witness_key, "--json",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert witness_key in json.loads(checked.stdout)["witnesses"]["witnesses"]
    forged = run_cli(
        "audit", "check-file", str(dataset / "station-7.csv"), str(proofs[1]),
        "--genesis-hash", genesis, "--witness", pin, "--min-witnesses", "1",
    )  # fmt: skip
    assert forged.returncode == 1 and forged.stdout.startswith("INVALID proof: "), forged.stdout


def wait_for_checkpoint(fork: Fork, height: int) -> None:
    """Wait until the witness has cosigned a checkpoint at or above a height."""
    wait_for(
        lambda: (c := witness_status(fork)["latest_checkpoint"]) and c["height"] >= height,
        30,
        f"a checkpoint at or above height {height}",
    )


def checkpoint_txs(fork: Fork) -> list[dict[str, Any]]:
    """Return the checkpoint transactions of the first chain's blocks."""
    client = NodeClient(fork.urls[0])
    found = []
    for height in range(1, fork.height(0) + 1):
        found += [tx for tx in client.get(f"/blocks/{height}")["txs"] if tx["kind"] == "checkpoint"]
    return found


def test_witness_start_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    env = {"DANANGCHAIN_PASSWORD": PASSWORD}
    run_cli("keys", "new", "w", "--keystore", str(keys), env=env)
    home = tmp_path / "witness"
    common = ["witness", "start", "--key", "w", "--keystore", str(keys), "--home", str(home)]
    for extra, message in (
        (["--node", "127.0.0.1:1"], "--node '127.0.0.1:1' must be scheme://host:port"),
        (["--node", "http://127.0.0.1:1", "--listen", "nowhere"], "--listen 'nowhere' must be"),
        (["--node", "http://127.0.0.1:1", "--key", "nope"], "key file"),
        (["--node", "http://127.0.0.1:1"], "cannot reach the node at http://127.0.0.1:1"),
    ):
        result = run_cli(*common, *extra, env=env, timeout=30)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert message in line, line
        assert not home.exists()  # nothing made
