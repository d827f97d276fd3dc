"""The anchor rule: members who record may anchor; it changes nothing but their nonce."""

from __future__ import annotations

import pytest

from danangchain.errors import InvalidTransaction
from danangchain.rules import apply_transaction
from danangchain.state import DictState, StateView, member_key
from danangchain.transaction import AnchorBody
from tests.unit.ledger_fixtures import (
    AUDITOR_SEED,
    BUSINESS_SEED,
    CHAIN_ID,
    HOUSEHOLD_SEED,
    OUTSIDER_SEED,
    REGISTRAR_SEED,
    VALIDATOR_SEED,
    address_of,
    get_tx_id,
    make_genesis_state,
    make_key,
    make_test_genesis,
    sign_next,
)

BODY = AnchorBody("air-2026", "dataset", bytes(range(32)), 10_000, 123_456_789)
WINDOW = AnchorBody("sensor-7", "iot", bytes(32), 10, 60, 1_700_000_000_000, 1_700_000_010_000)


@pytest.fixture
def state() -> DictState:
    members = [
        (make_key(HOUSEHOLD_SEED), "household"),
        (make_key(BUSINESS_SEED), "business"),
        (make_key(AUDITOR_SEED), "auditor"),
    ]
    return make_genesis_state(make_test_genesis(members=members))


@pytest.mark.parametrize("seed", [HOUSEHOLD_SEED, BUSINESS_SEED, REGISTRAR_SEED])
@pytest.mark.parametrize("body", [BODY, WINDOW])
def test_a_member_who_records_may_anchor_and_only_its_nonce_changes(
    state: DictState, seed: int, body: AnchorBody
) -> None:
    key = make_key(seed)
    tx = sign_next(state, key, body)
    view = StateView(state)
    apply_transaction(view, tx, get_tx_id(tx), CHAIN_ID, 3)
    assert list(view.writes) == [member_key(address_of(key))]
    member = view.get_member(address_of(key))
    assert member is not None and member.nonce == 1


@pytest.mark.parametrize(
    ("seed", "code"),
    [
        (AUDITOR_SEED, "not_allowed"),
        (VALIDATOR_SEED, "not_allowed"),
        (OUTSIDER_SEED, "unknown_sender"),
    ],
)
def test_invalid_anchor_by_an_auditor_a_validator_or_an_outsider_is_rejected(
    state: DictState, seed: int, code: str
) -> None:
    tx = sign_next(state, make_key(seed), BODY)
    view = StateView(state)
    with pytest.raises(InvalidTransaction) as info:
        apply_transaction(view, tx, get_tx_id(tx), CHAIN_ID, 3)
    assert info.value.code == code
    assert view.writes == {}
