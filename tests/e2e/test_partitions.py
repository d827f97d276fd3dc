"""End to end: four validators on their own loopback addresses, cut apart by nftables.

Node i listens on 127.0.0.(11+i), API and peers, and its process runs under a group of
its own, so the partition table gives its packets its address (see netfault.py). Each
scenario cuts, holds or flows transactions, heals, and prints what it measured (heights
committed on each side during the cut, seconds to converge after the heal); `pytest -s`
shows them, and the assertion messages carry them too.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cli.client import NodeClient
from cli.localnet import wait_until_serving
from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.transaction import MemberAdmitBody
from node.config import CONFIG_FILE, load_config, render_config
from tests.e2e.conftest import Network, record, wait_for
from tests.e2e.netfault import Netfault, netfault_table, node_group

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FIRST_HOST = 11  # node i is 127.0.0.(FIRST_HOST + i)
CONVERGE_S = 30.0
COMMIT_S = 15.0
URL_KEYS = ("api_url", "p2p_url")


def node_address(index: int) -> str:
    return f"127.0.0.{FIRST_HOST + index}"


def move_to_address(home: Path, address: str, peer_urls: dict[str, str]) -> None:
    """Rewrite a home's config.toml: API and peers on `address`, peers at their new URLs."""
    config = load_config(home)
    text = (home / CONFIG_FILE).read_text()
    if render_config(config) != text:
        raise AssertionError(f"{home / CONFIG_FILE} does not round-trip through NodeConfig")
    moved = replace(
        config,
        api_host=address,
        p2p_host=address,
        peers=tuple(peer_urls[url] for url in config.peers),
    )
    (home / CONFIG_FILE).write_text(render_config(moved))


class PartitionedNetwork(Network):
    """A Network of validators, node i on 127.0.0.(11+i) and in group node_group(i)."""

    def __init__(self, folder: Path, fault: Netfault, validators: int = 4) -> None:
        super().__init__(folder, validators, full_nodes=0)
        self.fault = fault
        self.addresses = [node_address(i) for i in range(len(self.homes))]
        peer_urls = {}
        for node, address in zip(self.made["nodes"], self.addresses, strict=True):
            port = node["p2p_url"].rsplit(":", 1)[1]
            peer_urls[node["p2p_url"]] = f"http://{address}:{port}"
            node["p2p_url"] = peer_urls[node["p2p_url"]]
            node["api_url"] = node["api_url"].replace("127.0.0.1", address)
        for home, address in zip(self.homes, self.addresses, strict=True):
            move_to_address(home, address, peer_urls)
        # URLs still naming 127.0.0.1 (a node registry's cards) reach the moved nodes too.
        self.groups = [
            fault.add_node(address, [int(node[k].rsplit(":", 1)[1]) for k in URL_KEYS])
            for node, address in zip(self.made["nodes"], self.addresses, strict=True)
        ]
        self.clients = [NodeClient(n["api_url"], timeout_s=5) for n in self.made["nodes"]]
        self.senders = [ed25519.signing_key_from_seed(bytes([90 + i]) * 32) for i in self.indexes]

    @property
    def indexes(self) -> list[int]:
        return list(range(len(self.homes)))

    def start(self, index: int) -> None:
        """Start a node as `danangchain node start`, under its own group id."""
        home = self.homes[index]
        log = home / "node.log"
        command = [sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)]
        command += ["--password-file", str(self.password_file)]
        with log.open("ab") as out:
            self.processes[index] = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                group=self.groups[index],
            )
        wait_until_serving(self.processes[index], self.made["nodes"][index]["api_url"], log)

    def cut(self, side_a: list[int], side_b: list[int]) -> None:
        self.fault.cut([self.addresses[i] for i in side_a], [self.addresses[i] for i in side_b])

    def admit_senders(self) -> None:
        """Admit one business per node; sender i only ever submits to node i (nonce order)."""
        admits = [
            self.submit(
                0, self.registrar, MemberAdmitBody(compute_address(k.public_key), "business")
            )
            for k in self.senders
        ]
        wait_for(lambda: self.committed_everywhere(admits), COMMIT_S, "the admissions")

    def submit_record(self, index: int, number: int) -> str:
        return self.submit(index, self.senders[index], record(number))

    def heights(self, nodes: list[int]) -> dict[int, int]:
        return {i: self.height(i) for i in nodes}

    def committed_everywhere(self, txs: list[str]) -> bool:
        return all(self.committed(i, t) for i in self.indexes for t in txs)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[PartitionedNetwork]:
    with netfault_table() as fault:  # deleted, rules and all, whatever happens
        net = PartitionedNetwork(tmp_path, fault)
        try:
            for index in net.indexes:
                net.start(index)
            net.admit_senders()
            yield net
        finally:
            net.stop_all()


def commit_in_steps(
    net: PartitionedNetwork, side: list[int], steps: int, frozen: dict[int, int], first: int
) -> list[str]:
    """Commit one record per step through the side's nodes, checking `frozen` never moves."""
    txs = []
    for step in range(steps):
        node = side[step % len(side)]
        txs.append(net.submit_record(node, first + step))

        def done(node: int = node, tx: str = txs[-1]) -> bool:
            assert_still(net, frozen)
            return net.committed(node, tx)

        wait_for(done, COMMIT_S, f"step {step} committed on node{node}")
    return txs


def assert_still(net: PartitionedNetwork, frozen: dict[int, int]) -> None:
    now = net.heights(list(frozen))
    assert now == frozen, f"a cut-off node committed: heights {now}, at the cut {frozen}"


def hold(net: PartitionedNetwork, frozen: dict[int, int], until: float) -> None:
    """Hold the partition until a moment, checking the frozen nodes' heights all along."""
    while time.monotonic() < until:
        assert_still(net, frozen)
        time.sleep(0.2)  # a deliberate window: nothing to wait for, only heights to check
    assert_still(net, frozen)


def converge(net: PartitionedNetwork, txs: list[str]) -> tuple[float, int]:
    """Wait until every node has every tx and one height; check the blocks; return (s, height)."""
    started = time.monotonic()

    def agreed() -> int:
        heights = set(net.heights(net.indexes).values())
        return heights.pop() if len(heights) == 1 and net.committed_everywhere(txs) else 0

    top = int(wait_for(agreed, CONVERGE_S, f"all nodes to hold {len(txs)} txs at one height"))
    seconds = time.monotonic() - started
    net.assert_agreement(net.indexes, top)
    return seconds, top


def report(scenario: str, **figures: Any) -> str:
    line = f"[partition] {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items())
    print(line)
    return line


def test_the_minority_freezes_the_majority_commits_and_all_agree_after_the_heal(
    network: PartitionedNetwork,
) -> None:
    minority, majority = [3], [0, 1, 2]
    before = network.heights(network.indexes)
    network.cut(minority, majority)
    cut_at = time.monotonic()
    waiting = network.submit_record(3, 1)  # stays in the minority's mempool until the heal
    frozen = network.heights(minority)
    txs = commit_in_steps(network, majority, 4, frozen, first=10)
    hold(network, frozen, cut_at + 3.0)
    held = time.monotonic() - cut_at
    during = network.heights(network.indexes)
    assert not network.committed(3, waiting)
    network.fault.heal()
    seconds, top = converge(network, [waiting, *txs])
    line = report(
        "1|3",
        minority_heights=during[3] - before[3],
        majority_heights=during[0] - before[0],
        cut_s=f"{held:.1f}",
        converge_s=f"{seconds:.2f}",
        height=top,
        dropped_packets=network.fault.dropped_packets(),
    )
    assert during[0] - before[0] >= 4 and during[3] == before[3], line


def test_a_two_two_split_commits_nothing_and_both_sides_resume_after_the_heal(
    network: PartitionedNetwork,
) -> None:
    before = network.heights(network.indexes)
    network.cut([0, 1], [2, 3])
    cut_at = time.monotonic()
    waiting = [network.submit_record(0, 1), network.submit_record(2, 1)]
    hold(network, before, cut_at + 3.0)
    held = time.monotonic() - cut_at
    during = network.heights(network.indexes)
    assert not any(network.committed(i, t) for i in network.indexes for t in waiting)
    network.fault.heal()
    seconds, top = converge(network, waiting)
    # Both sides commit again, each through its own node.
    after = [network.submit_record(1, 2), network.submit_record(3, 2)]
    resumed, top = converge(network, after)
    line = report(
        "2|2",
        heights_side_01=during[0] - before[0],
        heights_side_23=during[2] - before[2],
        cut_s=f"{held:.1f}",
        converge_s=f"{seconds:.2f}",
        resume_s=f"{resumed:.2f}",
        height=top,
        dropped_packets=network.fault.dropped_packets(),
    )
    assert top >= before[0] + 2, line


def test_an_isolated_proposer_is_replaced_by_a_round_change_and_catches_up(
    network: PartitionedNetwork,
) -> None:
    tip = network.height(0)
    height = tip + 1
    # The proposer of (height, round 0): round robin over the set, in the set's order.
    keys = network.clients[0].get("/status")["validators"]
    proposer_key = keys[height % len(keys)]
    proposer = [n["public_key"] for n in network.made["nodes"]].index(proposer_key)
    others = [i for i in network.indexes if i != proposer]
    network.cut([proposer], others)
    cut_at = time.monotonic()
    tx = network.submit_record(others[0], 1)
    wait_for(
        lambda: all(network.committed(i, tx) for i in others),
        COMMIT_S,
        "the record committed by the three others",
    )
    took = time.monotonic() - cut_at
    frozen_at = network.height(proposer)
    block = network.clients[others[0]].get(f"/blocks/{height}")
    network.fault.heal()
    seconds, top = converge(network, [tx])
    line = report(
        "isolated proposer",
        proposer=f"node{proposer}",
        proposer_heights=frozen_at - tip,
        others_heights=network.height(others[0]) - tip,
        commit_s=f"{took:.2f}",
        converge_s=f"{seconds:.2f}",
        round=block["certificate"]["round"],
        dropped_packets=network.fault.dropped_packets(),
    )
    assert frozen_at == tip and block["certificate"]["round"] >= 1, line
    assert block["header"]["proposer"] != proposer_key, line


def test_a_flapping_link_loses_no_transaction_and_all_agree(network: PartitionedNetwork) -> None:
    before = network.height(0)
    txs: list[str] = []
    number = 0
    started = time.monotonic()
    for flap in range(6):
        window = 0.5 + 0.1 * flap  # 0.5 .. 1.0 s cut, then as long healed
        for cut in (True, False):
            if cut:
                network.cut([0], [1])
            else:
                network.fault.heal()
            until = time.monotonic() + window
            while time.monotonic() < until:  # transactions flow through all four nodes
                number += 1
                txs.append(network.submit_record(number % 4, number))
                time.sleep(0.1)
    flapped = time.monotonic() - started
    during = network.height(0) - before
    dropped = network.fault.dropped_packets()
    seconds, top = converge(network, txs)
    line = report(
        "flapping 0<->1",
        flaps=6,
        txs=len(txs),
        heights_during=during,
        dropped_packets=dropped,
        flapping_s=f"{flapped:.1f}",
        converge_s=f"{seconds:.2f}",
        height=top,
    )
    # The cuts really bit: packets between node0 and node1 were dropped.
    assert during >= 1 and dropped > 0, line


def connect_as(group: int, address: str, port: int) -> str:
    """Connect from a child process running under a group: 'connected' or 'timeout'."""
    code = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=1).close()\n"
        "    print('connected')\n"
        "except OSError:\n"
        "    print('timeout')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], group=group, capture_output=True, text=True, timeout=10
    )
    return result.stdout.strip()


def test_a_cut_drops_packets_between_two_loopback_addresses_both_ways() -> None:
    with netfault_table() as fault, socket.socket() as server, socket.socket() as other:
        server.bind((node_address(1), 0))
        server.listen()
        other.bind((node_address(0), 0))
        other.listen()
        group = fault.add_node(node_address(0))
        fault.add_node(node_address(1))
        assert connect_as(group, node_address(1), server.getsockname()[1]) == "connected"
        _, source = server.accept()
        assert source[0] == node_address(0), "the node's group does not send from its address"
        fault.cut([node_address(0)], [node_address(1)])
        assert connect_as(group, node_address(1), server.getsockname()[1]) == "timeout"
        back = socket.socket()
        back.bind((node_address(1), 0))
        back.settimeout(1)
        with back, pytest.raises(TimeoutError):
            back.connect(other.getsockname())
        fault.heal()
        assert connect_as(group, node_address(1), server.getsockname()[1]) == "connected"


def test_only_loopback_addresses_can_be_cut() -> None:
    with netfault_table() as fault:
        with pytest.raises(ValueError, match="not a loopback address"):
            fault.cut(["127.0.0.11"], ["10.0.0.1"])
        with pytest.raises(ValueError, match="not a loopback address"):
            node_group("192.168.1.1")
