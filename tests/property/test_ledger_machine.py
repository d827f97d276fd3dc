"""A stateful ledger machine: random admissions, records, endorsements and revocations.

Every transaction, valid or not, is checked against a small independent model of who may
do what; after each step the ledger state must agree with the model and with a replay of
the accepted transactions from genesis.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.errors import InvalidTransaction
from danangchain.rules import apply_transaction
from danangchain.signing import compute_tx_signing_bytes
from danangchain.state import PREFIX_MEMBER, PREFIX_RECORD, DictState, StateView
from danangchain.transaction import (
    ROLES,
    Body,
    EndorseBody,
    MemberAdmitBody,
    MemberRevokeBody,
    RecordBody,
    Transaction,
    encode_body,
    sign_transaction,
)
from tests.unit.ledger_fixtures import (
    CHAIN_ID,
    REGISTRAR_SEED,
    VALIDATOR_SEED,
    address_of,
    get_next_nonce,
    get_tx_id,
    make_genesis_state,
    make_key,
    make_test_genesis,
)

REGISTRAR = make_key(REGISTRAR_SEED)
ACTORS = [REGISTRAR, *(make_key(seed) for seed in range(20, 25))]
# Actors are drawn by index, so failing examples and statistics stay readable.
actors = st.integers(0, len(ACTORS) - 1)
maybe_actors = st.none() | actors
roles = st.sampled_from(ROLES)
UNKNOWN_RECORD = hashlib.sha256(b"no such record").digest()


@dataclass
class ModelMember:
    """What the model expects of a member entry."""

    role: str
    nonce: int
    revoked: bool


@dataclass
class ModelRecord:
    """What the model expects of a record entry."""

    creator: bytes
    counterparty: bytes | None
    endorsed_height: int | None = None
    cancelled_height: int | None = None


def predict_code(
    members: dict[bytes, ModelMember], records: dict[bytes, ModelRecord], tx: Transaction
) -> str | None:
    """Return the rejection code the ledger must give, or None if it must accept."""
    sender = compute_address(tx.sender)
    member = members.get(sender)
    if member is None:
        return "unknown_sender"
    if member.revoked:
        return "revoked_sender"
    if tx.nonce != member.nonce + 1:
        return "wrong_nonce"
    message = compute_tx_signing_bytes(
        tx.chain_id, tx.sender, tx.nonce, tx.kind, encode_body(tx.body)
    )
    if not ed25519.is_valid_signature(tx.sender, message, tx.signature):
        return "bad_signature"
    return predict_body_code(members, records, sender, member, tx.body)


def predict_body_code(
    members: dict[bytes, ModelMember],
    records: dict[bytes, ModelRecord],
    sender: bytes,
    member: ModelMember,
    body: Body,
) -> str | None:
    """Return the rejection code of a body's own rules, or None."""
    if isinstance(body, RecordBody):
        if member.role in ("auditor", "witness"):
            return "not_allowed"
        if body.counterparty is not None:
            if body.counterparty == sender:
                return "bad_counterparty"
            other = members.get(body.counterparty)
            if other is None or other.revoked:
                return "unknown_counterparty"
        if body.reference is not None:
            earlier = records.get(body.reference)
            if earlier is None:
                return "unknown_record"
            if earlier.creator != sender:
                return "not_creator"
            if earlier.cancelled_height is not None:
                return "record_cancelled"
        return None
    if isinstance(body, EndorseBody):
        record = records.get(body.record_id)
        if record is None:
            return "unknown_record"
        if record.counterparty != sender:
            return "not_counterparty"
        if record.cancelled_height is not None:
            return "record_cancelled"
        return "already_endorsed" if record.endorsed_height is not None else None
    if member.role != "registrar":
        return "not_registrar"
    target = members.get(body.address)
    if isinstance(body, MemberAdmitBody):
        return "already_member" if target is not None and not target.revoked else None
    if body.address == sender:
        return "not_allowed"
    return "not_member" if target is None or target.revoked else None


def get_state_nonces(state: DictState) -> dict[bytes, int]:
    """Return every member's nonce held in state."""
    view = StateView(state)
    nonces = {}
    for key in state.items:
        if key.startswith(PREFIX_MEMBER):
            member = view.get_member(key[1:])
            assert member is not None
            nonces[key[1:]] = member.nonce
    return nonces


class LedgerMachine(RuleBasedStateMachine):
    """Drive one ledger state with random transactions and check it against a model."""

    def __init__(self) -> None:
        super().__init__()
        self.genesis = make_test_genesis()
        self.state = make_genesis_state(self.genesis)
        self.members = {
            address_of(REGISTRAR): ModelMember("registrar", 0, False),
            # Genesis gives each validator an account for its validator votes.
            address_of(make_key(VALIDATOR_SEED)): ModelMember("validator", 0, False),
        }
        self.records: dict[bytes, ModelRecord] = {}
        self.accepted: list[tuple[Transaction, int]] = []
        self.height = 1

    def submit(self, tx: Transaction) -> str | None:
        """Apply a transaction; check the code, the nonces and the no-effect of a rejection."""
        expected = predict_code(self.members, self.records, tx)
        event(f"{tx.kind}: {expected or 'accepted'}")
        before = dict(self.state.items)
        nonces_before = get_state_nonces(self.state)
        view = StateView(self.state)
        try:
            apply_transaction(view, tx, get_tx_id(tx), CHAIN_ID, self.height)
        except InvalidTransaction as exc:
            assert exc.code == expected, f"{exc.code} ({exc}), model expected {expected}"
            assert view.writes == {}
            assert self.state.items == before
            return exc.code
        assert expected is None, f"accepted, model expected {expected}"
        self.state.apply(view.writes)
        self.check_nonces_advanced(compute_address(tx.sender), nonces_before)
        self.update_model(tx)
        self.accepted.append((tx, self.height))
        self.height += 1
        return None

    def check_nonces_advanced(self, sender: bytes, nonces_before: dict[bytes, int]) -> None:
        """Check the sender's nonce went up by one and no other existing nonce moved."""
        nonces_after = get_state_nonces(self.state)
        for address, nonce in nonces_after.items():
            if address == sender:
                assert nonce == nonces_before[address] + 1
            elif address in nonces_before:
                assert nonce == nonces_before[address]
            else:
                assert nonce == 0

    def update_model(self, tx: Transaction) -> None:
        """Record an accepted transaction's effect in the model."""
        sender = compute_address(tx.sender)
        self.members[sender].nonce = tx.nonce
        body = tx.body
        if isinstance(body, RecordBody):
            self.records[get_tx_id(tx)] = ModelRecord(sender, body.counterparty)
            if body.reference_kind == "cancels":
                assert body.reference is not None
                self.records[body.reference].cancelled_height = self.height
        elif isinstance(body, EndorseBody):
            record = self.records[body.record_id]
            # Only the counterparty endorses, and only once.
            assert record.counterparty == sender and record.endorsed_height is None
            record.endorsed_height = self.height
        elif isinstance(body, MemberAdmitBody):
            previous = self.members.get(body.address)
            nonce = 0 if previous is None else previous.nonce
            self.members[body.address] = ModelMember(body.role, nonce, False)
        else:
            self.members[body.address].revoked = True

    def sign(self, key: ed25519.SigningKey, body: Body, skip: int = 0) -> Transaction:
        """Sign a body with the key's next nonce (plus `skip`)."""
        return sign_transaction(key, CHAIN_ID, get_next_nonce(self.state, key) + skip, body)

    def pick_record(self, index: int) -> bytes:
        """Return a known record id by index, or an unknown id when there are none or index < 0."""
        ids = sorted(self.records)
        return ids[index % len(ids)] if ids and index >= 0 else UNKNOWN_RECORD

    def get_active_keys(self, may_record: bool = False) -> list[ed25519.SigningKey]:
        """Return the keys the model holds as active members (optionally only recorders)."""
        keys = []
        for key in ACTORS:
            member = self.members.get(address_of(key))
            if member is None or member.revoked:
                continue
            if not may_record or member.role not in ("auditor", "witness"):
                keys.append(key)
        return keys

    @initialize(first_roles=st.lists(roles, min_size=3, max_size=3))
    def admit_first_members(self, first_roles: list[str]) -> None:
        for key, role in zip(ACTORS[1:], first_roles, strict=False):
            assert self.submit(self.sign(REGISTRAR, MemberAdmitBody(address_of(key), role))) is None

    @rule(sender=actors, subject=actors, role=roles)
    def admit(self, sender: int, subject: int, role: str) -> None:
        self.submit(self.sign(ACTORS[sender], MemberAdmitBody(address_of(ACTORS[subject]), role)))

    @rule(subject=actors, role=roles)
    def registrar_admits(self, subject: int, role: str) -> None:
        self.submit(self.sign(REGISTRAR, MemberAdmitBody(address_of(ACTORS[subject]), role)))

    @rule(sender=actors, subject=actors)
    def revoke(self, sender: int, subject: int) -> None:
        self.submit(self.sign(ACTORS[sender], MemberRevokeBody(address_of(ACTORS[subject]))))

    @rule(
        sender=actors,
        counterparty=maybe_actors,
        reference=st.none()
        | st.tuples(st.integers(-1, 10), st.sampled_from(["amends", "cancels"])),
        memo=st.text(max_size=8),
    )
    def record(
        self,
        sender: int,
        counterparty: int | None,
        reference: tuple[int, str] | None,
        memo: str,
    ) -> None:
        body = RecordBody(
            category="invoice",
            doc_hash=hashlib.sha256(memo.encode()).digest(),
            amount=len(memo),
            counterparty=None if counterparty is None else address_of(ACTORS[counterparty]),
            memo=memo,
            reference=None if reference is None else self.pick_record(reference[0]),
            reference_kind=None if reference is None else reference[1],
        )
        self.submit(self.sign(ACTORS[sender], body))

    @precondition(lambda self: len(self.get_active_keys()) >= 2)
    @rule(sender=st.integers(0, 100), counterparty=st.integers(0, 100), memo=st.text(max_size=8))
    def member_records_about_another(self, sender: int, counterparty: int, memo: str) -> None:
        recorders = self.get_active_keys(may_record=True)
        if not recorders:
            return
        key = recorders[sender % len(recorders)]
        others = [other for other in self.get_active_keys() if other != key]
        body = RecordBody(
            "contract",
            hashlib.sha256(memo.encode()).digest(),
            None,
            address_of(others[counterparty % len(others)]),
            memo,
        )
        assert self.submit(self.sign(key, body)) is None

    @rule(sender=actors, index=st.integers(-1, 10))
    def endorse(self, sender: int, index: int) -> None:
        self.submit(self.sign(ACTORS[sender], EndorseBody(self.pick_record(index))))

    @precondition(lambda self: self.records)
    @rule(index=st.integers(0, 10))
    def counterparty_endorses(self, index: int) -> None:
        record_id = self.pick_record(index)
        counterparty = self.records[record_id].counterparty
        key = next((k for k in ACTORS if address_of(k) == counterparty), None)
        if key is not None:
            self.submit(self.sign(key, EndorseBody(record_id)))

    @rule(sender=actors, skip=st.sampled_from([-2, -1, 1, 2]))
    def wrong_nonce(self, sender: int, skip: int) -> None:
        tx = self.sign(ACTORS[sender], RecordBody("other", bytes(32)), skip=skip)
        assert self.submit(tx) is not None

    @rule(sender=actors, bit=st.integers(0, 511))
    def bad_signature(self, sender: int, bit: int) -> None:
        tx = self.sign(ACTORS[sender], RecordBody("payment", bytes(32), 5))
        signature = bytearray(tx.signature)
        signature[bit // 8] ^= 1 << (bit % 8)
        assert self.submit(replace(tx, signature=bytes(signature))) is not None

    @precondition(lambda self: self.accepted)
    @rule(index=st.integers(0, 100))
    def replay(self, index: int) -> None:
        tx, _ = self.accepted[index % len(self.accepted)]
        assert self.submit(tx) in ("wrong_nonce", "revoked_sender")

    @invariant()
    def state_agrees_with_the_model(self) -> None:
        view = StateView(self.state)
        members = [key for key in self.state.items if key.startswith(PREFIX_MEMBER)]
        assert len(members) == len(self.members)
        for address, expected in self.members.items():
            member = view.get_member(address)
            assert member is not None
            assert (member.role, member.nonce, member.revoked) == (
                expected.role,
                expected.nonce,
                expected.revoked,
            )
        records = [key for key in self.state.items if key.startswith(PREFIX_RECORD)]
        assert len(records) == len(self.records)
        for record_id, expected_record in self.records.items():
            stored = view.get_record(record_id)
            assert stored is not None
            assert stored.creator == expected_record.creator
            assert stored.counterparty == expected_record.counterparty
            assert stored.endorsed_height == expected_record.endorsed_height
            assert stored.cancelled_height == expected_record.cancelled_height

    @invariant()
    def replay_from_genesis_gives_the_same_state(self) -> None:
        replayed = make_genesis_state(self.genesis)
        for tx, height in self.accepted:
            view = StateView(replayed)
            apply_transaction(view, tx, get_tx_id(tx), CHAIN_ID, height)
            replayed.apply(view.writes)
        assert replayed.items == self.state.items


LedgerMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerMachine = LedgerMachine.TestCase
