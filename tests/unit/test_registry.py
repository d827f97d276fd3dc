"""The node registry: signed cards, genesis cards, and the registry transactions' rules."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.errors import DecodeError, InvalidTransaction
from danangchain.genesis import (
    Genesis,
    compute_genesis_hash,
    decode_genesis_json,
    encode_genesis_json,
    make_genesis,
)
from danangchain.node_rules import get_node
from danangchain.registry import (
    NODE_ROLE_FULL,
    NODE_ROLE_VALIDATOR,
    NodeCard,
    check_p2p_url,
    decode_card_json,
    encode_card_json,
    sign_card,
)
from danangchain.state import DictState, StateView
from danangchain.transaction import (
    Body,
    NodeAdmitBody,
    NodeAnnounceBody,
    NodeRemoveBody,
    ValidatorVoteBody,
    decode_transaction,
    encode_transaction,
)
from danangchain.validators import Validator
from tests.unit.ledger_fixtures import (
    CHAIN_ID,
    GENESIS_TIME_MS,
    REGISTRAR_SEED,
    address_of,
    commit_transaction,
    make_genesis_state,
    make_key,
    make_test_genesis,
    sign_next,
)

registrar = make_key(REGISTRAR_SEED)
CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def card_of(seed: int, name: str, url: str = "http://127.0.0.11:26656") -> NodeCard:
    return sign_card(make_key(seed), name, [url], CERT)


def test_a_card_survives_its_json_form_and_a_changed_field_breaks_its_signature() -> None:
    card = sign_card(make_key(21), "Dept. of Finance", ["https://10.0.0.2:26656"], CERT)
    assert decode_card_json(encode_card_json(card)) == card
    document = json.loads(encode_card_json(card))
    document["p2p_urls"] = ["https://10.0.0.66:26656"]
    with pytest.raises(DecodeError, match="signature does not match"):
        decode_card_json(json.dumps(document))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://10.0.0.2:1",
        "http://10.0.0.2",
        "http://10.0.0.2:0",
        "http://10.0.0.2:70000",
        "http://10.0.0.2:26656/p2p",
        "http://user@10.0.0.2:26656",
        "http://:26656",
    ],
)
def test_a_card_refuses_a_malformed_peer_url(url: str) -> None:
    with pytest.raises(DecodeError, match="not a peer URL"):
        sign_card(make_key(21), "x", [url], None)


@given(st.text(max_size=60))
def test_check_p2p_url_accepts_only_scheme_host_and_port(text: str) -> None:
    try:
        url = check_p2p_url(text)
    except DecodeError:
        return
    scheme, rest = url.split("://")
    assert scheme in ("http", "https") and "/" not in rest and "@" not in rest


def genesis_with(cards: list[NodeCard]) -> Genesis:
    validators = [Validator(card.public_key, card.name) for card in cards[:2]]
    return make_genesis(
        CHAIN_ID, GENESIS_TIME_MS, validators, [(address_of(registrar), "registrar")], cards
    )


def test_the_same_cards_in_any_order_give_the_same_genesis_hash() -> None:
    cards = [card_of(31, "a"), card_of(32, "b"), card_of(33, "c")]
    first = genesis_with(cards)
    second = make_genesis(
        CHAIN_ID,
        GENESIS_TIME_MS,
        list(reversed(first.validator_set.validators)),
        [(address_of(registrar), "registrar")],
        list(reversed(cards)),
    )
    assert compute_genesis_hash(first) == compute_genesis_hash(second)
    assert decode_genesis_json(encode_genesis_json(first)) == first


def test_a_genesis_without_cards_keeps_the_hash_it_always_had() -> None:
    genesis = make_test_genesis()
    assert not genesis.nodes
    # The hash of this fixture's genesis before cards existed.
    assert decode_genesis_json(encode_genesis_json(genesis)).hash == genesis.hash
    assert "nodes" not in json.loads(encode_genesis_json(genesis))


@pytest.mark.parametrize("problem", ["same key", "same name", "forged"])
def test_genesis_refuses_two_cards_for_one_key_or_name_and_an_unsigned_card(problem: str) -> None:
    cards = [card_of(31, "a"), card_of(32, "b")]
    if problem == "same key":
        cards.append(sign_card(make_key(31), "other", ["http://127.0.0.13:1"], None))
    elif problem == "same name":
        cards.append(card_of(33, "a"))
    else:
        cards[1] = replace(cards[1], name="forged")
    with pytest.raises(DecodeError):
        genesis_with(cards)


def registry_state() -> DictState:
    cards = [card_of(31, "a"), card_of(32, "b"), card_of(33, "full")]
    return make_genesis_state(genesis_with(cards))


def test_genesis_writes_validators_and_full_nodes_into_the_registry() -> None:
    view = StateView(registry_state())
    assert get_node(view, make_key(31).public_key).role == NODE_ROLE_VALIDATOR
    full = get_node(view, make_key(33).public_key)
    assert full is not None and full.role == NODE_ROLE_FULL and full.p2p_urls
    account = view.get_member(address_of(make_key(33)))
    assert account is not None and account.role == "node"


def test_a_registrar_admits_a_full_node_and_removes_it() -> None:
    state = registry_state()
    newcomer = card_of(41, "partner")
    commit_transaction(state, sign_next(state, registrar, NodeAdmitBody(newcomer)))
    entry = get_node(StateView(state), make_key(41).public_key)
    assert entry is not None and entry.role == NODE_ROLE_FULL and entry.name == "partner"
    commit_transaction(state, sign_next(state, registrar, NodeRemoveBody(make_key(41).public_key)))
    assert get_node(StateView(state), make_key(41).public_key) is None
    account = StateView(state).get_member(address_of(make_key(41)))
    assert account is not None and account.revoked


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (NodeAdmitBody(card_of(31, "again")), "already_node"),
        (NodeAdmitBody(card_of(42, "a")), "name_taken"),
        (NodeAdmitBody(replace(card_of(42, "x"), name="y")), "bad_card"),
        (NodeRemoveBody(make_key(31).public_key), "not_allowed"),
        (NodeRemoveBody(make_key(49).public_key), "not_node"),
    ],
)
def test_registry_transactions_refused_with_their_rule(body: Body, rule: str) -> None:
    state = registry_state()
    before = dict(state.items)
    with pytest.raises(InvalidTransaction) as caught:
        commit_transaction(state, sign_next(state, registrar, body))
    assert caught.value.code == rule
    assert dict(state.items) == before


def test_only_a_registrar_admits_a_node() -> None:
    state = registry_state()
    validator = make_key(31)
    with pytest.raises(InvalidTransaction) as caught:
        commit_transaction(state, sign_next(state, validator, NodeAdmitBody(card_of(43, "p"))))
    assert caught.value.code == "not_registrar"


def test_a_node_moves_itself_and_nobody_else_can_move_it() -> None:
    state = registry_state()
    move = NodeAnnounceBody(("https://10.0.0.9:26656",), CERT)
    commit_transaction(state, sign_next(state, make_key(33), move))
    entry = get_node(StateView(state), make_key(33).public_key)
    assert entry is not None and entry.p2p_urls == ("https://10.0.0.9:26656",)
    with pytest.raises(InvalidTransaction) as caught:
        commit_transaction(state, sign_next(state, registrar, move))
    assert caught.value.code == "not_node"


def test_a_vote_naming_a_card_registers_the_validator_and_a_removal_keeps_it_as_full_node() -> None:
    state = registry_state()
    voters = [make_key(31), make_key(32)]
    candidate = card_of(44, "Dept. of Health")
    body = ValidatorVoteBody("add", make_key(44).public_key, "Dept. of Health", 1, candidate)
    encoded = encode_transaction(sign_next(state, voters[0], body))
    assert decode_transaction(encoded).body == body
    for voter in voters:
        commit_transaction(state, sign_next(state, voter, body))
    entry = get_node(StateView(state), make_key(44).public_key)
    assert entry is not None and entry.role == NODE_ROLE_VALIDATOR
    removal = ValidatorVoteBody("remove", make_key(44).public_key)
    for voter in voters:
        commit_transaction(state, sign_next(state, voter, removal), height=5)
    # Still its organisation's node (it signs until the change takes effect): a full node,
    # which a registrar may then remove.
    demoted = get_node(StateView(state), make_key(44).public_key)
    assert demoted is not None and demoted.role == NODE_ROLE_FULL
    commit_transaction(state, sign_next(state, registrar, NodeRemoveBody(make_key(44).public_key)))
    assert get_node(StateView(state), make_key(44).public_key) is None


def test_a_vote_may_carry_a_card_only_to_add_that_cards_key() -> None:
    state = registry_state()
    wrong = ValidatorVoteBody("add", make_key(45).public_key, "x", 1, card_of(46, "y"))
    encoded = encode_transaction(sign_next(state, make_key(31), wrong))
    with pytest.raises(InvalidTransaction, match="carries a card only"):
        decode_transaction(encoded)
