"""Transaction rules: who may do what, checked then applied to a state view."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.encoding import pack, unpack
from danangchain.errors import InvalidTransaction
from danangchain.state import (
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    Member,
    Record,
    StateView,
    key_binding_key,
    validator_vote_key,
)
from danangchain.transaction import (
    ROLE_VALIDATOR,
    EndorseBody,
    MemberAdmitBody,
    MemberRevokeBody,
    RecordBody,
    Transaction,
    ValidatorVoteBody,
    verify_transaction_signature,
)
from danangchain.validators import (
    Validator,
    ValidatorSet,
    decode_validator_set,
    encode_validator_set,
)

ROLES_THAT_RECORD = ("household", "business", "registrar")


def get_active_member(view: StateView, address: bytes) -> Member:
    """Return the sender's member entry; raise if unknown or revoked."""
    member = view.get_member(address)
    # Verify the sender is admitted and not revoked.
    if member is None:
        raise InvalidTransaction(
            f"sender {encode_address(address)} is not an admitted member", "unknown_sender"
        )
    if member.revoked:
        raise InvalidTransaction(
            f"sender {encode_address(address)} was revoked at height {member.revoked_height}",
            "revoked_sender",
        )
    return member


def get_sender_address(view: StateView, public_key: bytes) -> bytes:
    """Return the address a key signs for: its own, or the member it was rotated into."""
    own = compute_address(public_key)
    bound = view.get(key_binding_key(own))
    return own if bound is None else bound


def check_transaction(view: StateView, tx: Transaction, chain_id: str) -> tuple[bytes, Member]:
    """Check a transaction's chain, sender, key and nonce (not its signature)."""
    # Verify the transaction is for this network.
    if tx.chain_id != chain_id:
        raise InvalidTransaction(
            f"chain id {tx.chain_id!r} is not this network's {chain_id!r}", "wrong_chain_id"
        )
    address = get_sender_address(view, tx.sender)
    member = get_active_member(view, address)
    # Verify the key still signs for the member: a rotation replaces the old one.
    current = member.public_key
    if (current is not None and current != tx.sender) or (
        current is None and compute_address(tx.sender) != address
    ):
        raise InvalidTransaction(
            f"this key no longer signs for {encode_address(address)}: a registrar replaced it",
            "revoked_key",
        )
    # Verify the nonce is exactly the next one: each transaction applies once, in order.
    if tx.nonce != member.nonce + 1:
        raise InvalidTransaction(f"nonce {tx.nonce}, expected {member.nonce + 1}", "wrong_nonce")
    return address, member


def apply_transaction(
    view: StateView,
    tx: Transaction,
    tx_id: bytes,
    chain_id: str,
    height: int,
    verify_signature: bool = True,
) -> None:
    """Check every rule of a transaction and apply it to the view, or raise and change nothing."""
    sender, member = check_transaction(view, tx, chain_id)
    if verify_signature:
        verify_transaction_signature(tx)
    body = tx.body
    if isinstance(body, RecordBody):
        process_record(view, sender, member, body, tx_id, height)
    elif isinstance(body, EndorseBody):
        process_endorse(view, sender, body, height)
    elif isinstance(body, MemberAdmitBody):
        process_member_admit(view, sender, member, body, height)
    elif isinstance(body, MemberRevokeBody):
        process_member_revoke(view, sender, member, body, height)
    else:
        process_validator_vote(view, tx.sender, member, body, height)
    # The body rules never touch the sender's own entry (a registrar cannot revoke or
    # re-key itself), so the entry read before them is still current.
    view.put_member(sender, replace(member, nonce=tx.nonce))


def process_record(
    view: StateView, sender: bytes, member: Member, body: RecordBody, tx_id: bytes, height: int
) -> None:
    """Store a new record; its id is the transaction id."""
    # Verify the sender's role may record.
    if member.role not in ROLES_THAT_RECORD:
        raise InvalidTransaction(f"a member with role {member.role} may not record", "not_allowed")
    if body.counterparty is not None:
        # Verify the counterparty is someone else and an active member.
        if body.counterparty == sender:
            raise InvalidTransaction("the counterparty cannot be the sender", "bad_counterparty")
        counterparty = view.get_member(body.counterparty)
        if counterparty is None or counterparty.revoked:
            raise InvalidTransaction(
                f"counterparty {encode_address(body.counterparty)} is not an active member",
                "unknown_counterparty",
            )
    if body.reference is not None:
        # Verify an amendment or cancellation refers to the sender's own earlier record.
        earlier = view.get_record(body.reference)
        if earlier is None:
            raise InvalidTransaction(
                f"referenced record {body.reference.hex()} does not exist", "unknown_record"
            )
        if earlier.creator != sender:
            raise InvalidTransaction(
                "only the creator of a record may amend or cancel it", "not_creator"
            )
        # Verify a cancelled record stays final: no second cancellation, no amendment.
        if earlier.cancelled_height is not None:
            raise InvalidTransaction(
                f"record {body.reference.hex()} was cancelled at height {earlier.cancelled_height}",
                "record_cancelled",
            )
        if body.reference_kind == "cancels":
            view.put_record(body.reference, replace(earlier, cancelled_height=height))
    view.put_record(
        tx_id,
        Record(
            creator=sender,
            category=body.category,
            doc_hash=body.doc_hash,
            amount=body.amount,
            counterparty=body.counterparty,
            memo=body.memo,
            reference=body.reference,
            reference_kind=body.reference_kind,
            height=height,
        ),
    )


def process_endorse(view: StateView, sender: bytes, body: EndorseBody, height: int) -> None:
    """Mark a record endorsed by its named counterparty."""
    record = view.get_record(body.record_id)
    # Verify the record exists, names the sender, and is not endorsed yet.
    if record is None:
        raise InvalidTransaction(f"record {body.record_id.hex()} does not exist", "unknown_record")
    if record.counterparty != sender:
        raise InvalidTransaction(
            "only the record's named counterparty may endorse it", "not_counterparty"
        )
    if record.cancelled_height is not None:
        raise InvalidTransaction(
            f"record was cancelled at height {record.cancelled_height}", "record_cancelled"
        )
    if record.endorsed_height is not None:
        raise InvalidTransaction(
            f"record was already endorsed at height {record.endorsed_height}", "already_endorsed"
        )
    view.put_record(body.record_id, replace(record, endorsed_height=height))


def process_member_admit(
    view: StateView, sender: bytes, member: Member, body: MemberAdmitBody, height: int
) -> None:
    """Admit an address, re-admit a revoked one, or bind a new key to a member (rotation).

    The nonce is kept across re-admission and rotation, so nothing signed before replays.
    """
    require_registrar(member)
    existing = view.get_member(body.address)
    # Verify an active member is only re-admitted to bind a new key.
    if existing is not None and not existing.revoked and body.public_key is None:
        raise InvalidTransaction(
            f"{encode_address(body.address)} is already a member ({existing.role})",
            "already_member",
        )
    if existing is not None and existing.role == ROLE_VALIDATOR:
        raise InvalidTransaction("validator accounts change by validator votes", "not_allowed")
    if body.address == sender:
        raise InvalidTransaction("a registrar cannot re-admit itself", "not_allowed")
    if body.public_key is not None:
        bind_key(view, body.address, body.public_key)
    nonce = 0 if existing is None else existing.nonce
    view.put_member(body.address, Member(body.role, nonce, False, height, None, body.public_key))


def bind_key(view: StateView, address: bytes, public_key: bytes) -> None:
    """Make a new key sign for a member, refusing unsafe keys and keys in use elsewhere."""
    # Verify the key is a strict Ed25519 key that no other member already signs with.
    if not ed25519.is_strict_public_key(public_key):
        raise InvalidTransaction("the new public key is malformed or unsafe", "bad_key")
    own = compute_address(public_key)
    if (own != address and view.get_member(own) is not None) or view.get(
        key_binding_key(own)
    ) not in (None, address):
        raise InvalidTransaction("the new public key already signs for a member", "key_in_use")
    if own != address:
        view.put(key_binding_key(own), address)


def process_member_revoke(
    view: StateView, sender: bytes, member: Member, body: MemberRevokeBody, height: int
) -> None:
    """Revoke an active member."""
    require_registrar(member)
    # Verify a registrar does not lock itself out, and the target is active.
    if body.address == sender:
        raise InvalidTransaction("a registrar cannot revoke itself", "not_allowed")
    existing = view.get_member(body.address)
    if existing is None or existing.revoked:
        raise InvalidTransaction(
            f"{encode_address(body.address)} is not an active member", "not_member"
        )
    if existing.role == ROLE_VALIDATOR:
        raise InvalidTransaction("validators are removed by validator votes", "not_allowed")
    view.put_member(body.address, replace(existing, revoked=True, revoked_height=height))


def get_set(view: StateView, key: bytes) -> ValidatorSet:
    """Return one of the validator sets kept in state."""
    data = view.get(key)
    if data is None:
        raise InvalidTransaction("state holds no validator set", "no_validators")
    return decode_validator_set(data)


def compute_change_id(body: ValidatorVoteBody) -> bytes:
    """Return the id of a validator change: votes for the same change count together."""
    return hashlib.sha256(
        pack(["validator_change", body.action, body.public_key, body.name, body.power])
    ).digest()


def process_validator_vote(
    view: StateView, voter: bytes, member: Member, body: ValidatorVoteBody, height: int
) -> None:
    """Count a validator's vote; at more than 2/3 of the current power, change the set
    that signs from two heights on."""
    current, upcoming = get_set(view, KEY_VALIDATORS), get_set(view, KEY_NEXT_VALIDATORS)
    # Verify the voter is a validator of the current set.
    if member.role != ROLE_VALIDATOR or current.power_of(voter) == 0:
        raise InvalidTransaction("only a current validator may vote", "not_validator")
    check_change_applies(upcoming, body)
    change = [body.action, body.public_key, body.name, body.power]
    key = validator_vote_key(compute_change_id(body))
    stored = view.get(key)
    voters: list[bytes] = [] if stored is None else list(unpack(stored)[-1])
    # Verify one validator counts once per change.
    if voter in voters:
        raise InvalidTransaction("this validator already voted for this change", "duplicate_vote")
    voters.append(voter)
    power = sum(current.power_of(v) for v in voters)
    if power < current.quorum:
        view.put(key, pack([*change, sorted(voters)]))
        return
    view.put(key, None)
    view.put(KEY_NEXT_VALIDATORS, encode_validator_set(apply_change(upcoming, body)))
    if body.action == "add":
        admit_validator_account(view, compute_address(body.public_key), height)


def check_change_applies(upcoming: ValidatorSet, body: ValidatorVoteBody) -> None:
    """Refuse a change that already applied, an unsafe key, or removing the last validator."""
    present = upcoming.power_of(body.public_key) > 0
    if body.action == "add":
        if not ed25519.is_strict_public_key(body.public_key):
            raise InvalidTransaction("the validator key is malformed or unsafe", "bad_key")
        if present:
            raise InvalidTransaction("that key is already a validator", "already_applied")
    elif not present:
        raise InvalidTransaction("that key is not a validator", "already_applied")
    elif len(upcoming.validators) == 1:
        raise InvalidTransaction(
            "removing the only validator would leave none to sign blocks", "last_validator"
        )


def apply_change(upcoming: ValidatorSet, body: ValidatorVoteBody) -> ValidatorSet:
    """Return the set with a validator added or removed."""
    if body.action == "add":
        added = Validator(body.public_key, body.name or body.public_key.hex()[:12], body.power)
        return ValidatorSet.of([*upcoming.validators, added])
    return ValidatorSet.of([v for v in upcoming.validators if v.public_key != body.public_key])


def admit_validator_account(view: StateView, address: bytes, height: int) -> None:
    """Give a new validator the account its votes are signed from (keeping any nonce)."""
    existing = view.get_member(address)
    nonce = 0 if existing is None else existing.nonce
    view.put_member(address, Member(ROLE_VALIDATOR, nonce, False, height))


def require_registrar(member: Member) -> None:
    """Raise unless the sender is a registrar."""
    if member.role != "registrar":
        raise InvalidTransaction(
            f"only a registrar may admit or revoke members, sender is a {member.role}",
            "not_registrar",
        )
