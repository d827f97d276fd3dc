"""The rules of sealed records, their erasure, audit keys and members' encryption keys:
validators check all of them without reading any private content."""

from __future__ import annotations

import pytest

from danangchain.encoding import unpack
from danangchain.errors import InvalidTransaction
from danangchain.rules import apply_transaction, get_document_key
from danangchain.sealing import derive_encryption_key, encryption_public_key
from danangchain.state import DictState, StateView, decode_record, encode_record, record_key
from danangchain.transaction import (
    AuditKeysBody,
    EndorseBody,
    EraseBody,
    MemberAdmitBody,
    RecordBody,
    SealedRecordBody,
    decode_body,
    encode_body,
)
from tests.unit.ledger_fixtures import (
    AUDITOR_SEED,
    BUSINESS_SEED,
    CHAIN_ID,
    HOUSEHOLD_SEED,
    REGISTRAR_SEED,
    address_of,
    commit_transaction,
    get_tx_id,
    make_genesis_state,
    make_key,
    make_test_genesis,
    sign_next,
)

SHOP, HOME, REGISTRAR, AUDITOR = (
    make_key(s) for s in (BUSINESS_SEED, HOUSEHOLD_SEED, REGISTRAR_SEED, AUDITOR_SEED)
)
ENCRYPTION = encryption_public_key(derive_encryption_key(bytes(32)))


@pytest.fixture
def state() -> DictState:
    members = [(SHOP, "business"), (HOME, "household"), (AUDITOR, "auditor")]
    return make_genesis_state(make_test_genesis(members=members))


def sealed_body(**changes: object) -> SealedRecordBody:
    fields: dict[str, object] = {
        "category": "invoice",
        "doc_commitment": bytes([1]) * 32,
        "content_hash": bytes([2]) * 32,
        "counterparty": address_of(HOME),
    }
    fields.update(changes)
    return SealedRecordBody(**fields)  # type: ignore[arg-type]


def refused(state: DictState, key: object, body: object) -> str:
    tx = sign_next(state, key, body)  # type: ignore[arg-type]
    view = StateView(state)
    with pytest.raises(InvalidTransaction) as caught:
        apply_transaction(view, tx, get_tx_id(tx), CHAIN_ID, 5)
    assert view.writes == {}
    return caught.value.code


def test_a_sealed_record_is_stored_with_its_commitments_and_no_private_field(
    state: DictState,
) -> None:
    record_id = commit_transaction(state, sign_next(state, SHOP, sealed_body()), height=2)
    record = StateView(state).get_record(record_id)
    assert record is not None
    assert (record.amount, record.memo, record.doc_hash) == (None, "", bytes([1]) * 32)
    assert record.content_hash == bytes([2]) * 32 and record.erased_height is None
    assert decode_record(encode_record(record)) == record
    # The counterparty endorses it like any record.
    commit_transaction(state, sign_next(state, HOME, EndorseBody(record_id)), height=3)
    endorsed = StateView(state).get_record(record_id)
    assert endorsed is not None and endorsed.endorsed_height == 3


def test_sealed_records_obey_the_record_rules(state: DictState) -> None:
    assert refused(state, AUDITOR, sealed_body()) == "not_allowed"
    assert refused(state, SHOP, sealed_body(counterparty=address_of(SHOP))) == "bad_counterparty"
    assert (
        refused(state, SHOP, sealed_body(reference=bytes(32), reference_kind="amends"))
        == "unknown_record"
    )


def test_the_document_key_of_a_sealed_record_is_its_commitment(state: DictState) -> None:
    tx = sign_next(state, SHOP, sealed_body())
    key = get_document_key(StateView(state), tx)
    assert key == address_of(SHOP) + bytes([1]) * 32 + b"invoice"


def test_the_creator_or_a_registrar_erases_once_and_nobody_else(state: DictState) -> None:
    first = commit_transaction(state, sign_next(state, SHOP, sealed_body()), height=2)
    second = commit_transaction(
        state, sign_next(state, SHOP, sealed_body(doc_commitment=bytes(32))), height=3
    )
    assert refused(state, HOME, EraseBody(first)) == "not_creator"
    assert refused(state, SHOP, EraseBody(bytes(32))) == "unknown_record"
    commit_transaction(state, sign_next(state, SHOP, EraseBody(first)), height=4)
    commit_transaction(state, sign_next(state, REGISTRAR, EraseBody(second)), height=4)
    erased = StateView(state).get_record(first)
    assert erased is not None and erased.erased_height == 4
    assert erased.content_hash == bytes([2]) * 32
    assert refused(state, SHOP, EraseBody(first)) == "already_erased"


def test_a_plain_record_has_nothing_to_erase(state: DictState) -> None:
    plain = commit_transaction(
        state, sign_next(state, SHOP, RecordBody("invoice", bytes(32), 5)), height=2
    )
    assert refused(state, SHOP, EraseBody(plain)) == "not_sealed"


def test_only_a_registrar_sets_usable_audit_keys(state: DictState) -> None:
    assert refused(state, SHOP, AuditKeysBody((ENCRYPTION,))) == "not_registrar"
    assert refused(state, REGISTRAR, AuditKeysBody((bytes(32),))) == "bad_key"
    commit_transaction(state, sign_next(state, REGISTRAR, AuditKeysBody((ENCRYPTION,))))
    assert StateView(state).get_audit_keys() == (ENCRYPTION,)


def test_admission_publishes_an_encryption_key_and_re_admission_rotates_it(
    state: DictState,
) -> None:
    newcomer = make_key(40)
    body = MemberAdmitBody(address_of(newcomer), "household", None, ENCRYPTION)
    commit_transaction(state, sign_next(state, REGISTRAR, body))
    assert StateView(state).get_encryption_key(address_of(newcomer)) == ENCRYPTION
    rotated = encryption_public_key(derive_encryption_key(bytes([7]) * 32))
    again = MemberAdmitBody(address_of(newcomer), "household", None, rotated)
    commit_transaction(state, sign_next(state, REGISTRAR, again))
    assert StateView(state).get_encryption_key(address_of(newcomer)) == rotated
    bad = MemberAdmitBody(address_of(make_key(41)), "household", None, bytes(32))
    assert refused(state, REGISTRAR, bad) == "bad_key"
    plain = MemberAdmitBody(address_of(newcomer), "household")
    assert refused(state, REGISTRAR, plain) == "already_member"
    promoted = MemberAdmitBody(address_of(newcomer), "business", None, rotated)
    assert refused(state, REGISTRAR, promoted) == "already_member"


def test_publishing_a_key_leaves_a_rotated_members_entry_as_it_was(state: DictState) -> None:
    rotated_in = make_key(42)
    rotation = MemberAdmitBody(address_of(HOME), "household", rotated_in.public_key)
    commit_transaction(state, sign_next(state, REGISTRAR, rotation), height=2)
    before = StateView(state).get_member(address_of(HOME))
    publish = MemberAdmitBody(address_of(HOME), "household", None, ENCRYPTION)
    commit_transaction(state, sign_next(state, REGISTRAR, publish), height=3)
    assert StateView(state).get_member(address_of(HOME)) == before
    assert before is not None and before.public_key == rotated_in.public_key
    assert StateView(state).get_encryption_key(address_of(HOME)) == ENCRYPTION


def test_old_encodings_are_unchanged_and_new_bodies_round_trip() -> None:
    plain = MemberAdmitBody(bytes(20), "household", None)
    assert encode_body(plain) == [bytes(20), "household", None]
    for kind, body in [
        ("member_admit", plain),
        ("member_admit", MemberAdmitBody(bytes(20), "household", None, ENCRYPTION)),
        ("sealed_record", sealed_body()),
        ("erase", EraseBody(bytes(32))),
        ("audit_keys", AuditKeysBody((ENCRYPTION,))),
    ]:
        assert decode_body(kind, encode_body(body)) == body


def test_a_plain_record_entry_keeps_its_eleven_fields(state: DictState) -> None:
    plain = commit_transaction(
        state, sign_next(state, SHOP, RecordBody("invoice", bytes(32), 5)), height=2
    )
    assert len(unpack(state.items[record_key(plain)])) == 11
