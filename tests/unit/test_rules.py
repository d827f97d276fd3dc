"""Transaction rules: each rejection with its code and no effect, and each accepted change."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain import ed25519
from danangchain.errors import InvalidTransaction
from danangchain.rules import apply_transaction
from danangchain.signing import compute_tx_signing_bytes
from danangchain.state import (
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    DictState,
    Member,
    Record,
    StateView,
    encode_member,
    encode_record,
    member_key,
    record_key,
)
from danangchain.transaction import (
    KIND_RECORD,
    EndorseBody,
    MemberAdmitBody,
    MemberRevokeBody,
    RecordBody,
    Transaction,
    ValidatorVoteBody,
    encode_body,
    sign_transaction,
)
from danangchain.validators import decode_validator_set
from tests.unit.ledger_fixtures import (
    AUDITOR_SEED,
    BUSINESS_SEED,
    CHAIN_ID,
    HOUSEHOLD_SEED,
    OUTSIDER_SEED,
    REGISTRAR_SEED,
    VALIDATOR_SEED,
    address_of,
    apply_to_view,
    commit_transaction,
    get_tx_id,
    make_genesis_state,
    make_key,
    make_test_genesis,
    sign_next,
)

HEIGHT = 7
DOC = hashlib.sha256(b"invoice 2024-001").digest()

registrar = make_key(REGISTRAR_SEED)
alice = make_key(HOUSEHOLD_SEED)  # household
bob = make_key(BUSINESS_SEED)  # business
carol = make_key(AUDITOR_SEED)  # auditor
mallory = make_key(OUTSIDER_SEED)  # never admitted


@pytest.fixture
def state() -> DictState:
    """Genesis state: the registrar, a household, a business and an auditor, all at nonce 0."""
    members = [(alice, "household"), (bob, "business"), (carol, "auditor")]
    genesis = make_test_genesis(members=members)
    return make_genesis_state(genesis)


def record_body(counterparty: bytes | None = None, **changes: Any) -> RecordBody:
    """Return an invoice record body, optionally naming a counterparty."""
    return replace(RecordBody("invoice", DOC, 1_500_000, counterparty, "rice"), **changes)


def commit_record(state: DictState, key: ed25519.SigningKey, counterparty: bytes | None) -> bytes:
    """Commit a record by `key` and return its id."""
    return commit_transaction(state, sign_next(state, key, record_body(counterparty)))


def admit(state: DictState, key: ed25519.SigningKey, role: str, height: int = 1) -> None:
    """Commit the registrar's admission of `key` with `role`."""
    tx = sign_next(state, registrar, MemberAdmitBody(address_of(key), role))
    commit_transaction(state, tx, height)


def revoke(state: DictState, key: ed25519.SigningKey, height: int = 1) -> None:
    """Commit the registrar's revocation of `key`."""
    tx = sign_next(state, registrar, MemberRevokeBody(address_of(key)))
    commit_transaction(state, tx, height)


def get_member(state: DictState, key: ed25519.SigningKey) -> Member:
    """Return the member entry of a key, which must exist."""
    member = StateView(state).get_member(address_of(key))
    assert member is not None
    return member


def assert_rejected(state: DictState, tx: Transaction, code: str) -> InvalidTransaction:
    """Apply a transaction over pending writes; assert its code and that nothing changed."""
    before = dict(state.items)
    view = StateView(state)
    # A pending, unrelated write: a rejection must keep it and add nothing.
    view.put(b"pending", b"kept")
    with pytest.raises(InvalidTransaction) as info:
        apply_transaction(view, tx, get_tx_id(tx), CHAIN_ID, HEIGHT)
    assert info.value.code == code, str(info.value)
    assert view.writes == {b"pending": b"kept"}
    assert state.items == before
    return info.value


def apply_and_get_writes(state: DictState, tx: Transaction) -> dict[bytes, bytes | None]:
    """Apply an accepted transaction to a fresh view and return its writes."""
    view = StateView(state)
    apply_to_view(view, tx, HEIGHT)
    return view.writes


# Chain, signature, sender


def test_invalid_chain_id_rejected(state: DictState) -> None:
    tx = sign_next(state, alice, record_body(), chain_id="another-city")
    assert_rejected(state, tx, "wrong_chain_id")


def test_invalid_signature_with_a_flipped_bit_rejected(state: DictState) -> None:
    tx = sign_next(state, alice, record_body())
    flipped = bytes([tx.signature[0] ^ 0x01]) + tx.signature[1:]
    assert_rejected(state, replace(tx, signature=flipped), "bad_signature")


def test_invalid_signature_by_another_key_rejected(state: DictState) -> None:
    message = compute_tx_signing_bytes(
        CHAIN_ID, alice.public_key, 1, KIND_RECORD, encode_body(record_body())
    )
    tx = Transaction(CHAIN_ID, alice.public_key, 1, record_body(), ed25519.sign(bob, message))
    assert_rejected(state, tx, "bad_signature")


def test_invalid_signature_when_body_changed_after_signing_rejected(state: DictState) -> None:
    tx = sign_next(state, alice, record_body())
    assert_rejected(state, replace(tx, body=record_body(amount=9_999_999)), "bad_signature")


def test_invalid_signature_when_nonce_changed_after_signing_rejected(state: DictState) -> None:
    commit_record(state, alice, None)
    tx = sign_transaction(alice, CHAIN_ID, 1, record_body())
    assert_rejected(state, replace(tx, nonce=2), "bad_signature")


def test_invalid_unknown_sender_rejected(state: DictState) -> None:
    assert_rejected(state, sign_next(state, mallory, record_body()), "unknown_sender")


def test_invalid_revoked_sender_rejected(state: DictState) -> None:
    revoke(state, alice)
    assert_rejected(state, sign_next(state, alice, record_body()), "revoked_sender")


# Nonces


def test_invalid_nonce_too_low_rejected(state: DictState) -> None:
    commit_record(state, alice, None)
    tx = sign_transaction(alice, CHAIN_ID, 1, record_body(memo="again"))
    assert_rejected(state, tx, "wrong_nonce")


def test_invalid_nonce_zero_rejected(state: DictState) -> None:
    assert_rejected(state, sign_transaction(alice, CHAIN_ID, 0, record_body()), "wrong_nonce")


@pytest.mark.parametrize("skip", [1, 2, 1000])
def test_invalid_nonce_too_high_rejected(state: DictState, skip: int) -> None:
    assert_rejected(state, sign_next(state, alice, record_body(), skip=skip), "wrong_nonce")


def test_invalid_replay_of_the_same_transaction_rejected(state: DictState) -> None:
    tx = sign_next(state, alice, record_body())
    commit_transaction(state, tx)
    assert_rejected(state, tx, "wrong_nonce")


def test_nonces_advance_strictly_by_one_across_transactions(state: DictState) -> None:
    view = StateView(state)
    for nonce in (1, 2, 3):
        apply_to_view(view, sign_transaction(alice, CHAIN_ID, nonce, record_body(memo=str(nonce))))
        member = view.get_member(address_of(alice))
        assert member is not None and member.nonce == nonce
    with pytest.raises(InvalidTransaction) as info:
        apply_to_view(view, sign_transaction(alice, CHAIN_ID, 5, record_body()))
    assert info.value.code == "wrong_nonce"
    with pytest.raises(InvalidTransaction) as info:
        apply_to_view(view, sign_transaction(alice, CHAIN_ID, 3, record_body(memo="3")))
    assert info.value.code == "wrong_nonce"


def test_nonce_advances_only_for_the_sender(state: DictState) -> None:
    writes = apply_and_get_writes(state, sign_next(state, alice, record_body(address_of(bob))))
    assert member_key(address_of(bob)) not in writes
    assert member_key(address_of(registrar)) not in writes


# Record


def test_record_rejected_when_sender_is_an_auditor(state: DictState) -> None:
    assert_rejected(state, sign_next(state, carol, record_body()), "not_allowed")


def test_record_rejected_when_counterparty_is_the_sender(state: DictState) -> None:
    tx = sign_next(state, alice, record_body(address_of(alice)))
    assert_rejected(state, tx, "bad_counterparty")


def test_record_rejected_when_counterparty_is_not_a_member(state: DictState) -> None:
    tx = sign_next(state, alice, record_body(address_of(mallory)))
    assert_rejected(state, tx, "unknown_counterparty")


def test_record_rejected_when_counterparty_is_revoked(state: DictState) -> None:
    revoke(state, bob)
    tx = sign_next(state, alice, record_body(address_of(bob)))
    assert_rejected(state, tx, "unknown_counterparty")


@pytest.mark.parametrize("reference_kind", ["amends", "cancels"])
def test_record_rejected_when_it_references_an_unknown_record(
    state: DictState, reference_kind: str
) -> None:
    body = record_body(reference=bytes(32), reference_kind=reference_kind)
    assert_rejected(state, sign_next(state, alice, body), "unknown_record")


@pytest.mark.parametrize("reference_kind", ["amends", "cancels"])
def test_record_rejected_when_it_references_someone_elses_record(
    state: DictState, reference_kind: str
) -> None:
    bobs_record = commit_record(state, bob, address_of(alice))
    body = record_body(reference=bobs_record, reference_kind=reference_kind)
    # Even the counterparty named in the record may not amend or cancel it.
    assert_rejected(state, sign_next(state, alice, body), "not_creator")


def test_record_writes_exactly_the_record_and_the_sender_nonce(state: DictState) -> None:
    tx = sign_next(state, alice, record_body(address_of(bob)))
    writes = apply_and_get_writes(state, tx)
    expected_record = Record(
        creator=address_of(alice),
        category="invoice",
        doc_hash=DOC,
        amount=1_500_000,
        counterparty=address_of(bob),
        memo="rice",
        reference=None,
        reference_kind=None,
        height=HEIGHT,
    )
    assert writes == {
        record_key(get_tx_id(tx)): encode_record(expected_record),
        member_key(address_of(alice)): encode_member(Member("household", 1, False, 0)),
    }


def test_record_by_a_registrar_is_accepted(state: DictState) -> None:
    writes = apply_and_get_writes(state, sign_next(state, registrar, record_body()))
    assert len(writes) == 2


def test_record_amending_the_senders_own_record_is_accepted(state: DictState) -> None:
    original = commit_record(state, alice, None)
    tx = sign_next(state, alice, record_body(reference=original, reference_kind="amends"))
    writes = apply_and_get_writes(state, tx)
    record = StateView(state, writes).get_record(get_tx_id(tx))
    assert record is not None
    assert (record.reference, record.reference_kind) == (original, "amends")
    # The amended record itself is left as it was.
    assert record_key(original) not in writes


def test_record_cancelling_the_senders_own_record_marks_it_cancelled(state: DictState) -> None:
    original = commit_record(state, alice, None)
    tx = sign_next(state, alice, record_body(reference=original, reference_kind="cancels"))
    writes = apply_and_get_writes(state, tx)
    cancelled = StateView(state, writes).get_record(original)
    assert cancelled is not None and cancelled.cancelled_height == HEIGHT


@pytest.mark.parametrize("reference_kind", ["amends", "cancels"])
def test_record_rejected_when_it_refers_to_a_cancelled_record(
    state: DictState, reference_kind: str
) -> None:
    original = commit_record(state, alice, None)
    commit_transaction(
        state, sign_next(state, alice, record_body(reference=original, reference_kind="cancels"))
    )
    tx = sign_next(state, alice, record_body(reference=original, reference_kind=reference_kind))
    assert_rejected(state, tx, "record_cancelled")


def test_endorse_rejected_when_record_was_cancelled(state: DictState) -> None:
    original = commit_record(state, alice, address_of(bob))
    commit_transaction(
        state, sign_next(state, alice, record_body(reference=original, reference_kind="cancels"))
    )
    assert_rejected(state, sign_next(state, bob, EndorseBody(original)), "record_cancelled")


# Endorse


def test_endorse_rejected_when_record_is_unknown(state: DictState) -> None:
    tx = sign_next(state, bob, EndorseBody(bytes(32)))
    assert_rejected(state, tx, "unknown_record")


@pytest.mark.parametrize("endorser_seed", [AUDITOR_SEED, REGISTRAR_SEED, HOUSEHOLD_SEED])
def test_endorse_rejected_when_sender_is_not_counterparty(
    state: DictState, endorser_seed: int
) -> None:
    record_id = commit_record(state, alice, address_of(bob))
    tx = sign_next(state, make_key(endorser_seed), EndorseBody(record_id))
    assert_rejected(state, tx, "not_counterparty")


def test_endorse_rejected_when_record_names_no_counterparty(state: DictState) -> None:
    record_id = commit_record(state, alice, None)
    assert_rejected(state, sign_next(state, bob, EndorseBody(record_id)), "not_counterparty")


def test_endorse_rejected_when_already_endorsed(state: DictState) -> None:
    record_id = commit_record(state, alice, address_of(bob))
    commit_transaction(state, sign_next(state, bob, EndorseBody(record_id)), height=3)
    assert_rejected(state, sign_next(state, bob, EndorseBody(record_id)), "already_endorsed")


def test_endorse_by_counterparty_marks_the_record_endorsed_and_nothing_else(
    state: DictState,
) -> None:
    record_id = commit_record(state, alice, address_of(bob))
    record = StateView(state).get_record(record_id)
    assert record is not None and record.endorsed_height is None
    writes = apply_and_get_writes(state, sign_next(state, bob, EndorseBody(record_id)))
    assert writes == {
        record_key(record_id): encode_record(replace(record, endorsed_height=HEIGHT)),
        member_key(address_of(bob)): encode_member(Member("business", 1, False, 0)),
    }


def test_endorse_by_a_revoked_counterparty_rejected(state: DictState) -> None:
    record_id = commit_record(state, alice, address_of(bob))
    revoke(state, bob)
    assert_rejected(state, sign_next(state, bob, EndorseBody(record_id)), "revoked_sender")


# Member admission and revocation


@pytest.mark.parametrize("sender_seed", [HOUSEHOLD_SEED, BUSINESS_SEED, AUDITOR_SEED])
def test_admit_rejected_when_sender_is_not_registrar(state: DictState, sender_seed: int) -> None:
    tx = sign_next(state, make_key(sender_seed), MemberAdmitBody(address_of(mallory), "household"))
    assert_rejected(state, tx, "not_registrar")


@pytest.mark.parametrize("sender_seed", [HOUSEHOLD_SEED, BUSINESS_SEED, AUDITOR_SEED])
def test_revoke_rejected_when_sender_is_not_registrar(state: DictState, sender_seed: int) -> None:
    tx = sign_next(state, make_key(sender_seed), MemberRevokeBody(address_of(alice)))
    assert_rejected(state, tx, "not_registrar")


@pytest.mark.parametrize("target_seed", [HOUSEHOLD_SEED, REGISTRAR_SEED])
def test_admit_rejected_when_address_is_already_a_member(
    state: DictState, target_seed: int
) -> None:
    tx = sign_next(state, registrar, MemberAdmitBody(address_of(make_key(target_seed)), "business"))
    assert_rejected(state, tx, "already_member")


def test_revoke_rejected_when_address_is_not_a_member(state: DictState) -> None:
    tx = sign_next(state, registrar, MemberRevokeBody(address_of(mallory)))
    assert_rejected(state, tx, "not_member")


def test_revoke_rejected_when_member_is_already_revoked(state: DictState) -> None:
    revoke(state, alice)
    tx = sign_next(state, registrar, MemberRevokeBody(address_of(alice)))
    assert_rejected(state, tx, "not_member")


def test_revoke_rejected_when_registrar_revokes_itself(state: DictState) -> None:
    tx = sign_next(state, registrar, MemberRevokeBody(address_of(registrar)))
    assert_rejected(state, tx, "not_allowed")


def test_admit_writes_the_new_member_at_nonce_zero(state: DictState) -> None:
    tx = sign_next(state, registrar, MemberAdmitBody(address_of(mallory), "business"))
    assert apply_and_get_writes(state, tx) == {
        member_key(address_of(mallory)): encode_member(Member("business", 0, False, HEIGHT)),
        member_key(address_of(registrar)): encode_member(Member("registrar", 1, False, 0)),
    }


def test_admitted_member_can_then_transact_from_nonce_one(state: DictState) -> None:
    admit(state, mallory, "household")
    commit_transaction(state, sign_transaction(mallory, CHAIN_ID, 1, record_body()))
    assert get_member(state, mallory).nonce == 1


def test_revoke_marks_the_member_revoked_keeping_its_nonce(state: DictState) -> None:
    commit_record(state, alice, None)
    tx = sign_next(state, registrar, MemberRevokeBody(address_of(alice)))
    assert apply_and_get_writes(state, tx) == {
        member_key(address_of(alice)): encode_member(Member("household", 1, True, 0, HEIGHT)),
        member_key(address_of(registrar)): encode_member(Member("registrar", 1, False, 0)),
    }


def test_registrar_may_revoke_another_registrar(state: DictState) -> None:
    admit(state, mallory, "registrar")
    commit_transaction(state, sign_next(state, mallory, MemberRevokeBody(address_of(registrar))))
    assert get_member(state, registrar).revoked


def test_readmission_keeps_the_nonce_so_old_transactions_cannot_replay(state: DictState) -> None:
    old_tx = sign_next(state, alice, record_body())
    commit_transaction(state, old_tx, height=1)
    revoke(state, alice, height=2)
    admit(state, alice, "business", height=3)
    assert get_member(state, alice) == Member("business", 1, False, 3)
    assert_rejected(state, old_tx, "wrong_nonce")
    commit_transaction(state, sign_next(state, alice, record_body(memo="after")), height=4)
    assert get_member(state, alice).nonce == 2


# Validator votes and key rotation


def four_validator_state() -> tuple[DictState, list[ed25519.SigningKey]]:
    """A genesis with four validators (seeds 11..14) and the usual members."""
    validators = [make_key(seed) for seed in (11, 12, 13, 14)]
    genesis = make_test_genesis(validators, [(alice, "household"), (bob, "business")])
    return make_genesis_state(genesis), validators


def vote(state: DictState, voter: ed25519.SigningKey, action: str, key: bytes) -> Transaction:
    return sign_next(state, voter, ValidatorVoteBody(action, key, "new" if action == "add" else ""))


def sets(state: DictState) -> tuple[int, int]:
    view = StateView(state)
    return (
        len(decode_validator_set(view.get(KEY_VALIDATORS)).validators),
        len(decode_validator_set(view.get(KEY_NEXT_VALIDATORS)).validators),
    )


def test_validator_change_applies_to_the_upcoming_set_at_more_than_two_thirds() -> None:
    state, validators = four_validator_state()
    newcomer = make_key(15).public_key
    for voter in validators[:2]:
        commit_transaction(state, vote(state, voter, "add", newcomer))
        assert sets(state) == (4, 4)  # two of four is not more than 2/3
    commit_transaction(state, vote(state, validators[2], "add", newcomer))
    assert sets(state) == (4, 5)  # decided: signs from two heights on, not the next one
    member = StateView(state).get_member(address_of(make_key(15)))
    assert member is not None and member.role == "validator"


def test_validator_vote_rejected_when_sender_is_not_a_validator() -> None:
    state, _ = four_validator_state()
    assert_rejected(state, vote(state, alice, "add", make_key(15).public_key), "not_validator")


def test_validator_vote_rejected_when_the_same_validator_votes_twice() -> None:
    state, validators = four_validator_state()
    newcomer = make_key(15).public_key
    commit_transaction(state, vote(state, validators[0], "add", newcomer))
    assert_rejected(state, vote(state, validators[0], "add", newcomer), "duplicate_vote")


@pytest.mark.parametrize("action", ["add", "remove"])
def test_validator_vote_rejected_when_the_change_already_applied(action: str) -> None:
    state, validators = four_validator_state()
    key = validators[3].public_key if action == "add" else make_key(15).public_key
    assert_rejected(state, vote(state, validators[0], action, key), "already_applied")


def test_validator_vote_rejected_when_removing_the_only_validator() -> None:
    state = make_genesis_state(make_test_genesis())
    only = make_key(VALIDATOR_SEED)
    assert_rejected(state, vote(state, only, "remove", only.public_key), "last_validator")


def test_validator_vote_rejected_for_an_unsafe_key() -> None:
    state, validators = four_validator_state()
    identity = bytes([1]) + bytes(31)  # a small-order point
    assert_rejected(state, vote(state, validators[0], "add", identity), "bad_key")


def test_registrar_cannot_revoke_a_validator_account() -> None:
    state, validators = four_validator_state()
    tx = sign_next(state, registrar, MemberRevokeBody(address_of(validators[0])))
    assert_rejected(state, tx, "not_allowed")


def test_rotated_key_signs_for_the_member_and_the_old_key_is_refused() -> None:
    new_key = make_key(30)
    commit_transaction(
        state := make_genesis_state(make_test_genesis(members=[(alice, "household")])),
        sign_next(
            state, registrar, MemberAdmitBody(address_of(alice), "household", new_key.public_key)
        ),
    )
    member = StateView(state).get_member(address_of(alice))
    assert member is not None and member.public_key == new_key.public_key
    # The old key is refused from now on, whatever its nonce.
    old = sign_transaction(alice, CHAIN_ID, member.nonce + 1, record_body())
    assert_rejected(state, old, "revoked_key")
    # The new key continues the member's nonce sequence.
    renewed = sign_transaction(new_key, CHAIN_ID, member.nonce + 1, record_body())
    commit_transaction(state, renewed)
    assert StateView(state).get_member(address_of(alice)).nonce == member.nonce + 1


def test_rotation_rejected_when_the_new_key_belongs_to_another_member() -> None:
    state = make_genesis_state(make_test_genesis(members=[(alice, "household"), (bob, "business")]))
    tx = sign_next(
        state, registrar, MemberAdmitBody(address_of(alice), "household", bob.public_key)
    )
    assert_rejected(state, tx, "key_in_use")


@given(
    role=st.sampled_from(["household", "business", "registrar", "validator"]),
    nonce=st.integers(min_value=0, max_value=2**64 - 2),
    revoked_height=st.none() | st.integers(min_value=1, max_value=2**40),
    admitted=st.integers(min_value=0, max_value=2**40),
    public_key=st.none() | st.binary(min_size=32, max_size=32),
)
def test_nonce_bump_writes_what_replace_would(
    role: str, nonce: int, revoked_height: int | None, admitted: int, public_key: bytes | None
) -> None:
    member = Member(role, nonce, revoked_height is not None, admitted, revoked_height, public_key)
    bumped = member.with_nonce(nonce + 1)
    assert bumped == replace(member, nonce=nonce + 1)
    assert encode_member(bumped) == encode_member(replace(member, nonce=nonce + 1))
