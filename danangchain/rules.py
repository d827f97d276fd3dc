"""Transaction rules: who may do what, checked then applied to a state view."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.checkpoint import process_checkpoint
from danangchain.encoding import pack, unpack
from danangchain.errors import InvalidTransaction
from danangchain.node_rules import (
    check_card_registrable,
    demote_validator,
    process_node_admit,
    process_node_announce,
    process_node_remove,
    register_validator_card,
)
from danangchain.registry import encode_card_fields
from danangchain.sealing import is_valid_encryption_key
from danangchain.state import (
    KEY_AUDIT_KEYS,
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    Member,
    Record,
    StateView,
    encryption_key_key,
    key_binding_key,
    validator_vote_key,
)
from danangchain.transaction import (
    ROLE_VALIDATOR,
    AnchorBody,
    AuditKeysBody,
    CheckpointBody,
    EndorseBody,
    EraseBody,
    MemberAdmitBody,
    MemberRevokeBody,
    NodeAdmitBody,
    NodeRemoveBody,
    RecordBody,
    SealedRecordBody,
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
        raise InvalidTransaction.of(
            "sender {address} is not an admitted member",
            rule="unknown_sender",
            address=encode_address(address),
        )
    if member.revoked:
        raise InvalidTransaction.of(
            "sender {address} was revoked at height {height}",
            rule="revoked_sender",
            address=encode_address(address),
            height=member.revoked_height,
        )
    return member


def get_sender_address(view: StateView, public_key: bytes) -> bytes:
    """Return the address a key signs for: its own, or the member it was rotated into."""
    own = compute_address(public_key)
    bound = view.get(key_binding_key(own))
    return own if bound is None else bound


def get_concerned_addresses(view: StateView, tx: Transaction) -> frozenset[bytes]:
    """Return the addresses a transaction concerns: its sender's member address and the
    members it names (a record's counterparty, the admitted or revoked member, the creator
    of the endorsed record). The record index and the address events both use this."""
    addresses = {get_sender_address(view, tx.sender)}
    body = tx.body
    if isinstance(body, RecordBody | SealedRecordBody) and body.counterparty is not None:
        addresses.add(body.counterparty)
    elif isinstance(body, MemberAdmitBody | MemberRevokeBody):
        addresses.add(body.address)
    elif isinstance(body, EndorseBody | EraseBody):
        record = view.get_record(body.record_id)
        if record is not None:
            addresses.add(record.creator)
    return frozenset(addresses)


def get_record_index_addresses(view: StateView, tx: Transaction) -> tuple[bytes, ...]:
    """Return, in order, the addresses under which a record transaction is indexed
    (none for other kinds); `view` is the state after the transaction's block."""
    if not isinstance(tx.body, RecordBody | SealedRecordBody):
        return ()
    return tuple(sorted(get_concerned_addresses(view, tx)))


def get_document_key(view: StateView, tx: Transaction) -> bytes | None:
    """Return what makes a record the same record twice: its creator's member address, its
    document digest and its category (an invoice and the payment that settles it may cite
    one document), for a record that neither amends nor cancels another (None for every
    other transaction). Nodes refuse a second record with the same key while the first
    stands; `view` is the state the transaction is checked against."""
    body = tx.body
    if isinstance(body, SealedRecordBody):
        if body.reference is not None or body.doc_commitment is None:
            return None
        # The commitment is deterministic per member and document (danangchain/sealing.py).
        return get_sender_address(view, tx.sender) + body.doc_commitment + body.category.encode()
    if not isinstance(body, RecordBody) or body.reference is not None or body.doc_hash is None:
        return None  # two payments without a document may well be two payments
    return get_sender_address(view, tx.sender) + body.doc_hash + body.category.encode()


def check_transaction(view: StateView, tx: Transaction, chain_id: str) -> tuple[bytes, Member]:
    """Check a transaction's chain, sender, key and nonce (not its signature)."""
    # Verify the transaction is for this network.
    if tx.chain_id != chain_id:
        raise InvalidTransaction.of(
            "chain id {given!r} is not this network's {expected!r}",
            rule="wrong_chain_id",
            given=tx.chain_id,
            expected=chain_id,
        )
    address = get_sender_address(view, tx.sender)
    member = get_active_member(view, address)
    # Verify the key still signs for the member: a rotation replaces the old one.
    current = member.public_key
    if (current is not None and current != tx.sender) or (
        current is None and compute_address(tx.sender) != address
    ):
        raise InvalidTransaction.of(
            "this key no longer signs for {address}: a registrar replaced it",
            rule="revoked_key",
            address=encode_address(address),
        )
    # Verify the nonce is exactly the next one: each transaction applies once, in order.
    if tx.nonce != member.nonce + 1:
        raise InvalidTransaction.of(
            "nonce {nonce}, expected {expected}",
            rule="wrong_nonce",
            nonce=tx.nonce,
            expected=member.nonce + 1,
        )
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
    if isinstance(body, RecordBody | SealedRecordBody):
        process_record(view, sender, member, body, tx_id, height)
    elif isinstance(body, EraseBody):
        process_erase(view, sender, member, body, height)
    elif isinstance(body, AuditKeysBody):
        process_audit_keys(view, member, body)
    elif isinstance(body, EndorseBody):
        process_endorse(view, sender, body, height)
    elif isinstance(body, MemberAdmitBody):
        process_member_admit(view, sender, member, body, height)
    elif isinstance(body, MemberRevokeBody):
        process_member_revoke(view, sender, member, body, height)
    elif isinstance(body, ValidatorVoteBody):
        process_validator_vote(view, tx.sender, member, body, height)
    elif isinstance(body, NodeAdmitBody):
        process_node_admit(view, member, body, height)
    elif isinstance(body, NodeRemoveBody):
        process_node_remove(view, member, body, height)
    elif isinstance(body, AnchorBody):
        process_anchor(member)
    elif isinstance(body, CheckpointBody):
        process_checkpoint(view, chain_id, tx.sender, sender, member, body, height)
    else:
        process_node_announce(view, tx.sender, member, body, height)
    # The body rules never touch the sender's own entry (a registrar cannot revoke or
    # re-key itself), so the entry read before them is still current.
    view.put_member(sender, member.with_nonce(tx.nonce))


def process_record(
    view: StateView,
    sender: bytes,
    member: Member,
    body: RecordBody | SealedRecordBody,
    tx_id: bytes,
    height: int,
) -> None:
    """Store a new record, plain or sealed; its id is the transaction id. A sealed record
    obeys the same rules: none of them reads its amount or memo."""
    # Verify the sender's role may record.
    if member.role not in ROLES_THAT_RECORD:
        raise InvalidTransaction.of(
            "a member with role {role} may not record", rule="not_allowed", role=member.role
        )
    if body.counterparty is not None:
        # Verify the counterparty is someone else and an active member.
        if body.counterparty == sender:
            raise InvalidTransaction.of(
                "the counterparty cannot be the sender", rule="bad_counterparty"
            )
        counterparty = view.get_member(body.counterparty)
        if counterparty is None or counterparty.revoked:
            raise InvalidTransaction.of(
                "counterparty {address} is not an active member",
                rule="unknown_counterparty",
                address=encode_address(body.counterparty),
            )
    if body.reference is not None:
        # Verify an amendment or cancellation refers to the sender's own earlier record.
        earlier = view.get_record(body.reference)
        if earlier is None:
            raise InvalidTransaction.of(
                "referenced record {record} does not exist",
                rule="unknown_record",
                record=body.reference.hex(),
            )
        if earlier.creator != sender:
            raise InvalidTransaction.of(
                "only the creator of a record may amend or cancel it", rule="not_creator"
            )
        # Verify a cancelled record stays final: no second cancellation, no amendment.
        if earlier.cancelled_height is not None:
            raise InvalidTransaction.of(
                "record {record} was cancelled at height {height}",
                rule="record_cancelled",
                record=body.reference.hex(),
                height=earlier.cancelled_height,
            )
        if body.reference_kind == "cancels":
            view.put_record(body.reference, replace(earlier, cancelled_height=height))
    # A sealed record keeps its document's commitment where a plain one keeps its digest;
    # its amount and memo are not in state at all, only the hash of their sealed content.
    if isinstance(body, SealedRecordBody):
        doc_hash, amount, memo, content_hash = body.doc_commitment, None, "", body.content_hash
    else:
        doc_hash, amount, memo, content_hash = body.doc_hash, body.amount, body.memo, None
    record = Record(
        creator=sender,
        category=body.category,
        doc_hash=doc_hash,
        amount=amount,
        counterparty=body.counterparty,
        memo=memo,
        reference=body.reference,
        reference_kind=body.reference_kind,
        height=height,
        content_hash=content_hash,
    )
    view.put_record(tx_id, record)


def process_erase(
    view: StateView, sender: bytes, member: Member, body: EraseBody, height: int
) -> None:
    """Mark a sealed record's private content erased: every node deletes it at commit.
    The record, its commitments and its block stay, so the chain still verifies."""
    record = view.get_record(body.record_id)
    # Verify the record exists, is sealed and not erased yet.
    if record is None:
        raise InvalidTransaction.of(
            "record {record} does not exist", rule="unknown_record", record=body.record_id.hex()
        )
    if record.content_hash is None:
        raise InvalidTransaction.of(
            "record {record} is not sealed: its fields are public, there is nothing to erase",
            rule="not_sealed",
            record=body.record_id.hex(),
        )
    # Verify the sender is the record's creator or a registrar (a lawful request).
    if record.creator != sender and member.role != "registrar":
        raise InvalidTransaction.of(
            "only the record's creator or a registrar may erase it", rule="not_creator"
        )
    if record.erased_height is not None:
        raise InvalidTransaction.of(
            "record {record} was already erased at height {height}",
            rule="already_erased",
            record=body.record_id.hex(),
            height=record.erased_height,
        )
    view.put_record(body.record_id, replace(record, erased_height=height))


def process_audit_keys(view: StateView, member: Member, body: AuditKeysBody) -> None:
    """Replace the network's audit keys (a registrar's rotation)."""
    if member.role != "registrar":
        raise InvalidTransaction.of(
            "only a registrar may set the audit keys, sender is a {role}",
            rule="not_registrar",
            role=member.role,
        )
    # Verify each key is a usable X25519 key.
    for key in body.keys:
        if not is_valid_encryption_key(key):
            raise InvalidTransaction.of(
                "audit key {key} is not a usable X25519 key", rule="bad_key", key=key.hex()
            )
    view.put(KEY_AUDIT_KEYS, pack(list(body.keys)))


def process_anchor(member: Member) -> None:
    """Allow an anchor from a member who may record; it writes nothing but the nonce (the
    transaction itself, in a certified block, is what a file's proof leads to)."""
    # Verify the sender's role may anchor: those who record, not auditors, validators or nodes.
    if member.role not in ROLES_THAT_RECORD:
        raise InvalidTransaction.of(
            "a member with role {role} may not anchor data", rule="not_allowed", role=member.role
        )


def process_endorse(view: StateView, sender: bytes, body: EndorseBody, height: int) -> None:
    """Mark a record endorsed by its named counterparty."""
    record = view.get_record(body.record_id)
    # Verify the record exists, names the sender, and is not endorsed yet.
    if record is None:
        raise InvalidTransaction.of(
            "record {record} does not exist", rule="unknown_record", record=body.record_id.hex()
        )
    if record.counterparty != sender:
        raise InvalidTransaction.of(
            "only the record's named counterparty may endorse it", rule="not_counterparty"
        )
    if record.cancelled_height is not None:
        raise InvalidTransaction.of(
            "record was cancelled at height {height}",
            rule="record_cancelled",
            height=record.cancelled_height,
        )
    if record.endorsed_height is not None:
        raise InvalidTransaction.of(
            "record was already endorsed at height {height}",
            rule="already_endorsed",
            height=record.endorsed_height,
        )
    view.put_record(body.record_id, replace(record, endorsed_height=height))


def process_member_admit(
    view: StateView, sender: bytes, member: Member, body: MemberAdmitBody, height: int
) -> None:
    """Admit an address, re-admit a revoked one, bind a new key to a member (rotation), or
    publish a member's encryption key.

    The nonce is kept across re-admission and rotation, so nothing signed before replays.
    """
    require_registrar(member)
    existing = view.get_member(body.address)
    # Verify an active member is only re-admitted to bind a new signing key, or to publish
    # an encryption key under the role it has.
    active = existing if existing is not None and not existing.revoked else None
    publishing = active is not None and body.public_key is None
    if (
        active is not None
        and publishing
        and (body.encryption_key is None or active.role != body.role)
    ):
        raise InvalidTransaction.of(
            "{address} is already a member ({role})",
            rule="already_member",
            address=encode_address(body.address),
            role=active.role,
        )
    if existing is not None and existing.role == ROLE_VALIDATOR:
        raise InvalidTransaction.of(
            "validator accounts change by validator votes", rule="not_allowed"
        )
    if body.address == sender:
        raise InvalidTransaction.of("a registrar cannot re-admit itself", rule="not_allowed")
    if body.public_key is not None:
        bind_key(view, body.address, body.public_key)
    if body.encryption_key is not None:
        # Verify the encryption key is a usable X25519 key.
        if not is_valid_encryption_key(body.encryption_key):
            raise InvalidTransaction.of(
                "the encryption key is not a usable X25519 key", rule="bad_key"
            )
        view.put(encryption_key_key(body.address), body.encryption_key)
    if publishing:
        return  # the member's entry (role, signing key, heights) stays as it was
    nonce = 0 if existing is None else existing.nonce
    view.put_member(body.address, Member(body.role, nonce, False, height, None, body.public_key))


def bind_key(view: StateView, address: bytes, public_key: bytes) -> None:
    """Make a new key sign for a member, refusing unsafe keys and keys in use elsewhere."""
    # Verify the key is a strict Ed25519 key that no other member already signs with.
    if not ed25519.is_strict_public_key(public_key):
        raise InvalidTransaction.of("the new public key is malformed or unsafe", rule="bad_key")
    own = compute_address(public_key)
    if (own != address and view.get_member(own) is not None) or view.get(
        key_binding_key(own)
    ) not in (None, address):
        raise InvalidTransaction.of(
            "the new public key already signs for a member", rule="key_in_use"
        )
    if own != address:
        view.put(key_binding_key(own), address)


def process_member_revoke(
    view: StateView, sender: bytes, member: Member, body: MemberRevokeBody, height: int
) -> None:
    """Revoke an active member."""
    require_registrar(member)
    # Verify a registrar does not lock itself out, and the target is active.
    if body.address == sender:
        raise InvalidTransaction.of("a registrar cannot revoke itself", rule="not_allowed")
    existing = view.get_member(body.address)
    if existing is None or existing.revoked:
        raise InvalidTransaction.of(
            "{address} is not an active member",
            rule="not_member",
            address=encode_address(body.address),
        )
    if existing.role == ROLE_VALIDATOR:
        raise InvalidTransaction.of("validators are removed by validator votes", rule="not_allowed")
    view.put_member(body.address, replace(existing, revoked=True, revoked_height=height))


def get_set(view: StateView, key: bytes) -> ValidatorSet:
    """Return one of the validator sets kept in state."""
    data = view.get(key)
    if data is None:
        raise InvalidTransaction.of("state holds no validator set", rule="no_validators")
    return decode_validator_set(data)


def compute_change_id(body: ValidatorVoteBody) -> bytes:
    """Return the id of a validator change: votes for the same change count together
    (an add that names a card counts only with votes naming the same card)."""
    change: list[Any] = ["validator_change", body.action, body.public_key, body.name, body.power]
    if body.card is not None:
        change.append(encode_card_fields(body.card))
    return hashlib.sha256(pack(change)).digest()


def process_validator_vote(
    view: StateView, voter: bytes, member: Member, body: ValidatorVoteBody, height: int
) -> None:
    """Count a validator's vote; at more than 2/3 of the current power, change the set
    that signs from two heights on."""
    current, upcoming = get_set(view, KEY_VALIDATORS), get_set(view, KEY_NEXT_VALIDATORS)
    # Verify the voter is a validator of the current set.
    if member.role != ROLE_VALIDATOR or current.power_of(voter) == 0:
        raise InvalidTransaction.of("only a current validator may vote", rule="not_validator")
    check_change_applies(upcoming, body)
    if body.card is not None:
        check_card_registrable(view, body.card)
    change = [body.action, body.public_key, body.name, body.power]
    key = validator_vote_key(compute_change_id(body))
    stored = view.get(key)
    voters: list[bytes] = [] if stored is None else list(unpack(stored)[-1])
    # Verify one validator counts once per change.
    if voter in voters:
        raise InvalidTransaction.of(
            "this validator already voted for this change", rule="duplicate_vote"
        )
    voters.append(voter)
    power = sum(current.power_of(v) for v in voters)
    if power < current.quorum:
        view.put(key, pack([*change, sorted(voters)]))
        return
    view.put(key, None)
    view.put(KEY_NEXT_VALIDATORS, encode_validator_set(apply_change(upcoming, body)))
    if body.action == "add":
        admit_validator_account(view, compute_address(body.public_key), height)
        register_validator_card(view, body.card, body.public_key, height)
    else:
        demote_validator(view, body.public_key)


def check_change_applies(upcoming: ValidatorSet, body: ValidatorVoteBody) -> None:
    """Refuse a change that already applied, an unsafe key, or removing the last validator."""
    present = upcoming.power_of(body.public_key) > 0
    if body.action == "add":
        if not ed25519.is_strict_public_key(body.public_key):
            raise InvalidTransaction.of("the validator key is malformed or unsafe", rule="bad_key")
        if present:
            raise InvalidTransaction.of("that key is already a validator", rule="already_applied")
    elif not present:
        raise InvalidTransaction.of("that key is not a validator", rule="already_applied")
    elif len(upcoming.validators) == 1:
        raise InvalidTransaction.of(
            "removing the only validator would leave none to sign blocks", rule="last_validator"
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
        raise InvalidTransaction.of(
            "only a registrar may admit or revoke members, sender is a {role}",
            rule="not_registrar",
            role=member.role,
        )
