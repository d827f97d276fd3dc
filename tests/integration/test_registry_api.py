"""The node registry through a node: GET /nodes, admission and removal by a registrar,
a node's own move, and peer access that follows the registry from the next block on."""

from __future__ import annotations

from danangchain.genesis import Genesis, make_genesis
from danangchain.registry import sign_card
from danangchain.transaction import NodeAdmitBody, NodeAnnounceBody, NodeRemoveBody
from danangchain.validators import Validator
from node.p2p.service import PeerAccess, compute_peer_urls

from .conftest import (
    CHAIN_ID,
    GENESIS_TIME_MS,
    REGISTRAR,
    VALIDATOR,
    StartNode,
    address_of,
    encode_signed,
    make_key,
)

PARTNER = make_key(21)


def genesis_with_cards() -> Genesis:
    card = sign_card(VALIDATOR, "validator-0", ["http://127.0.0.11:26656"], None)
    return make_genesis(
        CHAIN_ID,
        GENESIS_TIME_MS,
        [Validator(VALIDATOR.public_key, "validator-0")],
        [(address_of(REGISTRAR), "registrar")],
        [card],
    )


async def test_a_registrar_admits_a_full_node_it_moves_itself_and_is_removed(
    start_node: StartNode,
) -> None:
    node = await start_node(genesis=genesis_with_cards())
    access = PeerAccess(node.ledger, frozenset())
    listed = await node.get_ok("/nodes")
    assert [n["role"] for n in listed["nodes"]] == ["validator"]
    assert not access(PARTNER.public_key)

    card = sign_card(PARTNER, "partner", ["http://127.0.0.12:26656"], None)
    await node.submit_ok(encode_signed(REGISTRAR, 1, NodeAdmitBody(card)))
    node.produce_block()
    listed = await node.get_ok("/nodes")
    partner = next(n for n in listed["nodes"] if n["name"] == "partner")
    assert partner["role"] == "full" and partner["p2p_urls"] == ["http://127.0.0.12:26656"]
    assert access(PARTNER.public_key)  # refreshed by the commit, nothing else
    assert compute_peer_urls(node.ledger.reads.nodes(), VALIDATOR.public_key, ()) == {
        PARTNER.public_key.hex(): "http://127.0.0.12:26656"
    }

    move = NodeAnnounceBody(("http://127.0.0.13:26656",), None)
    await node.submit_ok(encode_signed(PARTNER, 1, move))
    node.produce_block()
    listed = await node.get_ok("/nodes")
    assert next(n for n in listed["nodes"] if n["name"] == "partner")["p2p_urls"] == [
        "http://127.0.0.13:26656"
    ]

    await node.submit_ok(encode_signed(REGISTRAR, 2, NodeRemoveBody(PARTNER.public_key)))
    node.produce_block()
    assert [n["name"] for n in (await node.get_ok("/nodes"))["nodes"]] == ["validator-0"]
    assert not access(PARTNER.public_key)  # refused from the next block on


async def test_a_full_node_admission_from_someone_not_a_registrar_is_refused(
    start_node: StartNode,
) -> None:
    node = await start_node(genesis=genesis_with_cards())
    card = sign_card(PARTNER, "partner", ["http://127.0.0.12:26656"], None)
    status, answer = await node.post_tx(encode_signed(PARTNER, 1, NodeAdmitBody(card)))
    assert status == 400 and answer["error"] == "unknown_sender"
    status, answer = await node.post_tx(encode_signed(VALIDATOR, 1, NodeAdmitBody(card)))
    assert status == 400 and answer["error"] == "not_registrar"


async def test_the_explorer_shows_a_node_admission_field_by_field(start_node: StartNode) -> None:
    node = await start_node(genesis=genesis_with_cards())
    card = sign_card(PARTNER, "partner <b>", ["http://127.0.0.12:26656"], None)
    tx_id = await node.submit_ok(encode_signed(REGISTRAR, 1, NodeAdmitBody(card)))
    node.produce_block()
    page = await (await node.client.get(f"/explorer/txs/{tx_id}")).text()
    assert "name: partner &lt;b&gt;<br>" in page
    assert "p2p_urls: http://127.0.0.12:26656<br>" in page
