"""End to end: a one-validator network votes a full node in as its second validator, and out.

The network is what `danangchain network init --validators 1 --full-nodes 1` writes (the
`Network` helper of conftest.py calls the same `init_network`): node0 is the only
validator, node1 a full node with its own key in its own home (`node1/node_key.json`),
which is no validator's key. `network init` writes a full mesh, so no config is edited
by hand: each node's `[p2p] peers` lists every other node's p2p URL and its
`allowed_peers` every node's key. The validator therefore already has the full node
among the peers it sends consensus messages to when the full node is voted in.

The votes are `danangchain validator propose`, each signed with a validator's own node
key and sent to that validator's node. A change applies once validators with more than
2/3 of the current power voted for it, and signs from two heights after the block that
decided it: node0 alone adds node1 (1 of 1); removing node1 takes both of the two
validators, node0 and node1 itself (1 of 2 is not more than 2/3).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.transaction import MemberAdmitBody
from tests.e2e.conftest import Network, propose, record, signing_keys, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FOUNDER, NEWCOMER = 0, 1


def commit_records(net: Network, sender: ed25519.SigningKey, sent: list[str], height: int) -> None:
    """Commit records one at a time through node0 until its chain reaches a height."""
    while net.height(FOUNDER) < height:
        tx_id = net.submit(FOUNDER, sender, record(len(sent)))
        sent.append(tx_id)
        wait_committed(net, tx_id)


def wait_committed(net: Network, tx_id: str) -> None:
    """Wait until node0 committed a transaction, failing at once if its process exits."""

    def committed() -> bool:
        net.assert_running(FOUNDER)
        return net.committed(FOUNDER, tx_id)

    wait_for(committed, 30, f"transaction {tx_id[:16]} to commit on node0")


def assert_signed_by(net: Network, node: int, heights: Iterable[int], keys: set[str]) -> None:
    """Check that the certificate a node keeps for each height has exactly these signers."""
    for height in heights:
        certificate = net.clients[node].get(f"/blocks/{height}")["certificate"]
        signers = {s["validator"] for s in certificate["signatures"]}
        assert signers == keys, f"node{node}'s certificate of block {height} is signed by {signers}"


def test_a_single_validator_votes_a_full_node_in_both_sign_then_both_vote_it_out(
    tmp_path: Path,
) -> None:
    net = Network(tmp_path, validators=1, full_nodes=1)
    try:
        net.start(FOUNDER)
        net.start(NEWCOMER)
        founder = net.made["nodes"][FOUNDER]["public_key"]
        newcomer = net.made["nodes"][NEWCOMER]["public_key"]
        assert net.clients[NEWCOMER].get("/status")["node_public_key"] == newcomer != founder
        sender = ed25519.signing_key_from_seed(b"\x44" * 32)
        admit = MemberAdmitBody(compute_address(sender.public_key), "business")
        sent = [net.submit(FOUNDER, net.registrar, admit)]
        wait_for(lambda: net.committed(NEWCOMER, sent[0]), 30, "the full node to follow")
        assert signing_keys(net, FOUNDER, net.height(FOUNDER) + 2) == {founder}

        # node0's vote alone adds node1; from two heights on, both sign every block.
        added = propose(net, FOUNDER, "add", newcomer, "--wait")
        assert added["status"] == "committed"
        grown = added["height"] + 2
        assert signing_keys(net, FOUNDER, grown) == {founder, newcomer}
        commit_records(net, sender, sent, grown + 3)
        tip = net.height(FOUNDER)
        for node in (FOUNDER, NEWCOMER):
            assert_signed_by(net, node, range(grown, tip + 1), {founder, newcomer})
        net.assert_agreement([FOUNDER, NEWCOMER], tip)

        # Removing node1 takes both votes: node0's alone changes nothing.
        first = propose(net, FOUNDER, "remove", newcomer, "--wait")
        assert first["status"] == "committed"
        assert signing_keys(net, FOUNDER, first["height"] + 2) == {founder, newcomer}
        second = propose(net, NEWCOMER, "remove", newcomer, "--wait")
        assert second["status"] == "committed"
        shrunk = second["height"] + 2
        assert signing_keys(net, FOUNDER, shrunk) == {founder}
        commit_records(net, sender, sent, shrunk + 2)
        assert_signed_by(net, FOUNDER, range(shrunk, net.height(FOUNDER) + 1), {founder})

        # With node1 stopped, node0 keeps committing alone.
        net.stop(NEWCOMER)
        before = net.height(FOUNDER)
        commit_records(net, sender, sent, before + 3)
        assert_signed_by(net, FOUNDER, range(before + 1, net.height(FOUNDER) + 1), {founder})
        assert all(net.committed(FOUNDER, tx_id) for tx_id in sent)
        net.assert_running(FOUNDER)
    finally:
        net.stop_all()
