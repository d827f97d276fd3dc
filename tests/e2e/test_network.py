"""End to end: four validators and a follower, each its own process, over real HTTP."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.client import NodeClient
from cli.localnet import find_free_ports, start_node_process, stop_node_process, wait_until_serving
from cli.network import init_network
from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.transaction import MemberAdmitBody, encode_transaction, sign_transaction
from node.keyfile import read_keystore, unlock_key
from tests.e2e.conftest import PASSWORD, Network, record, run_cli, run_cli_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path)
    try:
        for index in range(4):
            net.start(index)
        yield net
    finally:
        net.stop_all()
        shutil.rmtree(tmp_path / "net", ignore_errors=True)


def test_four_validators_agree_survive_one_loss_stop_at_two_and_catch_up(network: Network) -> None:
    senders = [ed25519.signing_key_from_seed(bytes([50 + i]) * 32) for i in range(4)]
    # One sender's transactions go to one node, so its nonces arrive in order.
    admits = [
        network.submit(
            0, network.registrar, MemberAdmitBody(compute_address(k.public_key), "business")
        )
        for k in senders
    ]
    wait_for(lambda: all(network.committed(0, t) for t in admits), 30, "admissions")

    # Round-robin over all four nodes: every transaction commits, once, everywhere alike.
    txs = [network.submit(n % 4, senders[n % 4], record(n)) for n in range(40)]
    wait_for(
        lambda: all(network.committed(n % 4, t) for n, t in enumerate(txs)),
        60,
        "40 records on all nodes",
    )
    top = min(network.height(i) for i in range(4))
    network.assert_agreement([0, 1, 2, 3], top)

    # One validator lost: the other three keep committing.
    network.kill(3)
    more = [network.submit(n % 3, senders[n % 3], record(100 + n)) for n in range(9)]
    wait_for(lambda: all(network.committed(0, t) for t in more), 60, "commits with 3 of 4")

    # A second one lost: no quorum, so commits stop, and nothing diverges.
    network.kill(2)
    stuck_height = network.height(0)
    waiting = network.submit(0, senders[0], record(200))
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert network.height(0) == stuck_height and network.height(1) == stuck_height
        time.sleep(0.2)
    assert not network.committed(0, waiting)
    network.assert_agreement([0, 1], stuck_height)

    # Both come back: they catch up from their peers and commits resume.
    network.start(2)
    network.start(3)
    wait_for(lambda: network.committed(0, waiting), 90, "the waiting record after recovery")
    after = network.submit(1, senders[1], record(201))
    wait_for(
        lambda: all(network.committed(i, after) for i in range(4)),
        60,
        "a new record on all four nodes",
    )
    top = min(network.height(i) for i in range(4))
    network.assert_agreement([0, 1, 2, 3], top)

    # A follower started with an empty store syncs the whole chain.
    network.start(4)
    follower = network.made["nodes"][4]["api_url"]
    synced = run_cli_json(
        "node", "wait-synced", "--node", follower, "--max-blocks-behind", "0", "--timeout", "60"
    )
    assert synced["ready"] and synced["blocks_behind"] == 0 and synced["height"] >= top
    network.assert_agreement([0, 4], top)


def test_wait_synced_gives_up_with_exit_code_1_when_no_node_answers(tmp_path: Path) -> None:
    port = find_free_ports(1)
    result = run_cli("node", "wait-synced", "--node", f"http://127.0.0.1:{port}", "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("error: not synced after 1s: cannot reach the node")
    assert "Traceback" not in result.stderr


def test_a_full_node_follows_a_single_validator_and_passes_on_transactions(
    tmp_path: Path,
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    made = init_network(tmp_path / "net", 1, "e2e-solo", find_free_ports(2), PASSWORD, full_nodes=1)
    homes = [Path(n["home"]) for n in made["nodes"]]
    urls = [n["api_url"] for n in made["nodes"]]
    processes = []
    try:
        for home, url in zip(homes, urls, strict=True):
            log = home / "node.log"
            processes.append(start_node_process(home, password_file, log))
            wait_until_serving(processes[-1], url, log)
        registrar = unlock_key(read_keystore(Path(made["keystore"]) / "registrar.json"), PASSWORD)
        household = ed25519.signing_key_from_seed(bytes([70]) * 32)
        admit = MemberAdmitBody(compute_address(household.public_key), "household")
        follower = NodeClient(urls[1], timeout_s=5)
        # Submitted to the full node, which passes it on to the validator.
        tx_id = follower.post_tx(
            encode_transaction(sign_transaction(registrar, "e2e-solo", 1, admit))
        )
        assert follower.wait_for_tx(tx_id["tx_id"], 30)["status"] == "committed"
        synced = run_cli_json("node", "wait-synced", "--node", urls[1], "--max-blocks-behind", "0")
        assert synced["height"] == 1 and synced["peers_answering"] == 1
        validator = NodeClient(urls[0], timeout_s=5)
        assert follower.get("/blocks/1")["hash"] == validator.get("/blocks/1")["hash"]
    finally:
        for process in processes:
            stop_node_process(process)
