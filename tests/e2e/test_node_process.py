"""End to end: a real node process, the real CLI, a SIGKILL in the middle of a stream."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from cli.client import NodeClient, NotFound
from danangchain.address import compute_address, encode_address
from node.keyfile import generate_signing_key, save_key
from tests.e2e.conftest import PASSWORD, LocalNode, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def wait_for(condition, timeout_s: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll a condition until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_member(node: LocalNode, name: str, role: str) -> str:
    """Create a key in the node's keystore (cheap KDF for speed) and admit it through the CLI."""
    key = generate_signing_key()
    saved = save_key(node.keystore / f"{name}.json", name, key, PASSWORD, kdf_n=2**10)
    address = encode_address(compute_address(key.public_key))
    assert saved.encryption_public_key is not None
    result = node.cli(
        "member", "admit", address, "--role", role, "--from", "registrar", "--wait", "--json",
        "--encryption-key", saved.encryption_public_key.hex(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "committed"
    return address


def test_household_and_business_record_and_endorse_through_the_cli(local_node: LocalNode) -> None:
    household = make_member(local_node, "household", "household")
    make_member(local_node, "business", "business")
    doc = local_node.folder / "invoice.pdf"
    doc.write_bytes(b"%PDF invoice 0001")
    recorded = local_node.cli(
        "tx",
        "record",
        "--from",
        "business",
        "--category",
        "invoice",
        "--doc",
        str(doc),
        "--amount",
        "1500000",
        "--counterparty",
        household,
        "--memo",
        "rice",
        "--wait",
        "--json",
    )
    assert recorded.returncode == 0, recorded.stderr
    record = json.loads(recorded.stdout)
    assert record["status"] == "committed" and record["height"] >= 1
    endorsed = local_node.cli(
        "tx", "endorse", record["tx_id"], "--from", "household", "--wait", "--json"
    )
    assert endorsed.returncode == 0, endorsed.stderr
    shown = local_node.cli("query", "record", record["tx_id"], "--from", "household", "--json")
    shown = json.loads(shown.stdout)
    assert shown["endorsed"] is True and shown["counterparty"] == household
    status = json.loads(run_cli("query", "status", "--node", local_node.url, "--json").stdout)
    assert {"chain_id", "height", "latest_block_hash"} <= status.keys()


def test_cli_errors_are_one_line_with_the_right_exit_code(local_node: LocalNode) -> None:
    household = make_member(local_node, "household", "household")
    typo = household[:-3] + ("q" if household[-3] != "q" else "p") + household[-2:]
    cases = [
        (
            local_node.cli("member", "admit", typo, "--role", "business", "--from", "registrar"),
            2,
            "checksum",
        ),
        (local_node.cli("tx", "endorse", "00" * 32, "--from", "nobody"), 2, "not found"),
        (
            run_cli(
                "tx",
                "endorse",
                "00" * 32,
                "--from",
                "household",
                "--node",
                local_node.url,
                "--keystore",
                str(local_node.keystore),
                env={"DANANGCHAIN_PASSWORD": "wrong"},
            ),
            2,
            "wrong password",
        ),
        (run_cli("query", "status", "--node", "http://127.0.0.1:1"), 2, "cannot reach"),
        (local_node.cli("tx", "endorse", "00" * 32, "--from", "household"), 1, "unknown_record"),
        (
            local_node.cli(
                "member", "admit", household, "--role", "business", "--from", "household"
            ),
            1,
            "not_registrar",
        ),
        (run_cli("query", "tx", "ab" * 32, "--node", local_node.url), 1, "no such"),
        # A node's refusal in Vietnamese: the node sends the rule's template and values.
        (
            run_cli(
                "--lang",
                "vi",
                "tx",
                "endorse",
                "00" * 32,
                "--from",
                "household",
                "--node",
                local_node.url,
                "--keystore",
                str(local_node.keystore),
                "--password-file",
                str(local_node.password_file),
            ),  # fmt: skip
            1,
            f"lỗi: giao dịch bị từ chối (unknown_record): không có bản ghi {'00' * 32}",
        ),
    ]
    for result, code, fragment in cases:
        assert result.returncode == code, (result.args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert fragment in lines[0], lines[0]


def test_every_reported_commit_survives_sigkill_during_a_stream(local_node: LocalNode) -> None:
    household = make_member(local_node, "household", "household")
    make_member(local_node, "business", "business")
    client = NodeClient(local_node.url)
    submitted: list[str] = []
    committed: dict[str, tuple[int, int, str]] = {}
    stop = threading.Event()

    def submit_stream() -> None:
        for number in range(10_000):
            if stop.is_set():
                return
            result = local_node.cli(
                "tx",
                "record",
                "--from",
                "business",
                "--category",
                "invoice",
                "--doc-hash",
                f"{number:064x}",
                "--counterparty",
                household,
                "--json",
            )
            if result.returncode == 0:
                submitted.append(json.loads(result.stdout)["tx_id"])

    def observe_commits() -> None:
        while not stop.is_set():
            for tx_id in list(submitted):
                if tx_id in committed:
                    continue
                try:
                    state = client.get(f"/txs/{tx_id}")
                except Exception:
                    continue
                if state["status"] == "committed":
                    block = client.get(f"/blocks/{state['height']}")
                    committed[tx_id] = (
                        state["height"],
                        state["index"],
                        block["header"]["state_root"],
                    )

    threads = [threading.Thread(target=submit_stream), threading.Thread(target=observe_commits)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(committed) >= 8, 90, "eight commits under load")
        os.kill(local_node.processes[-1].pid, signal.SIGKILL)
        local_node.processes[-1].wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    local_node.start()
    for tx_id, (height, index, state_root) in committed.items():
        state = client.get(f"/txs/{tx_id}")
        assert state["status"] == "committed", tx_id
        assert (state["height"], state["index"]) == (height, index)
        block = client.get(f"/blocks/{height}")
        assert block["header"]["state_root"] == state_root
    status = client.get("/status")
    latest = client.get("/blocks/latest")
    assert status["state_root"] == latest["header"]["state_root"]
    assert status["height"] >= max(h for h, _, _ in committed.values())
    # Every transaction the node accepted (202) before the kill commits after the restart.
    for tx_id in submitted:
        assert client.wait_for_tx(tx_id, 30)["status"] == "committed", tx_id
    # The node keeps working after the restart: a new record commits on top.
    after = local_node.cli(
        "tx",
        "record",
        "--from",
        "business",
        "--category",
        "other",
        "--doc-hash",
        "ff" * 32,
        "--wait",
        "--json",
    )
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["height"] > status["height"] - 1


def test_quickstart_runs_the_whole_story(tmp_path: Path) -> None:
    result = run_cli("quickstart", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    story = json.loads(result.stdout)
    assert story["endorsed"] is True
    assert [step["status"] for step in story["steps"]] == ["committed"] * 4


def test_unknown_transaction_is_not_found(local_node: LocalNode) -> None:
    with pytest.raises(NotFound):
        NodeClient(local_node.url).get(f"/txs/{'cd' * 32}")


def test_transactions_accepted_before_a_sigkill_commit_after_the_restart(
    local_node: LocalNode,
) -> None:
    make_member(local_node, "household", "household")
    # Slow the node's blocks down so that accepted transactions are still pending when it
    # is killed.
    config = local_node.home / "config.toml"
    fast = config.read_text()
    os.kill(local_node.processes[-1].pid, signal.SIGTERM)
    local_node.processes[-1].wait()
    config.write_text(fast.replace("min_interval_ms = 50", "min_interval_ms = 600000"))
    local_node.start()
    client = NodeClient(local_node.url)
    first = client.get("/status")["height"]
    accepted = []
    for number in range(4):
        result = local_node.cli(
            "tx", "record", "--from", "household", "--category", "invoice",
            "--doc-hash", f"{number + 1:064x}", "--json",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        accepted.append(json.loads(result.stdout)["tx_id"])
    # The first commits at once; the others wait for the next block, ten minutes away.
    assert client.wait_for_tx(accepted[0], 30)["status"] == "committed"
    assert {client.get(f"/txs/{t}")["status"] for t in accepted[1:]} == {"pending"}
    os.kill(local_node.processes[-1].pid, signal.SIGKILL)
    local_node.processes[-1].wait()

    config.write_text(fast)
    local_node.start()
    for tx_id in accepted:
        assert client.wait_for_tx(tx_id, 30)["status"] == "committed", tx_id
    assert client.get("/status")["height"] > first
