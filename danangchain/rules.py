"""Transaction rules: who may do what, checked then applied to a state view."""

from __future__ import annotations

from dataclasses import replace

from danangchain.address import compute_address, encode_address
from danangchain.errors import InvalidTransaction
from danangchain.state import Member, Record, StateView
from danangchain.transaction import (
    EndorseBody,
    MemberAdmitBody,
    MemberRevokeBody,
    RecordBody,
    Transaction,
    verify_transaction_signature,
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


def check_transaction(view: StateView, tx: Transaction, chain_id: str) -> Member:
    """Check a transaction's chain, sender and nonce (not its signature); return the sender."""
    # Verify the transaction is for this network.
    if tx.chain_id != chain_id:
        raise InvalidTransaction(
            f"chain id {tx.chain_id!r} is not this network's {chain_id!r}", "wrong_chain_id"
        )
    member = get_active_member(view, compute_address(tx.sender))
    # Verify the nonce is exactly the next one: each transaction applies once, in order.
    if tx.nonce != member.nonce + 1:
        raise InvalidTransaction(f"nonce {tx.nonce}, expected {member.nonce + 1}", "wrong_nonce")
    return member


def apply_transaction(
    view: StateView,
    tx: Transaction,
    tx_id: bytes,
    chain_id: str,
    height: int,
    verify_signature: bool = True,
) -> None:
    """Check every rule of a transaction and apply it to the view, or raise and change nothing."""
    member = check_transaction(view, tx, chain_id)
    if verify_signature:
        verify_transaction_signature(tx)
    sender = compute_address(tx.sender)
    body = tx.body
    if isinstance(body, RecordBody):
        process_record(view, sender, member, body, tx_id, height)
    elif isinstance(body, EndorseBody):
        process_endorse(view, sender, body, height)
    elif isinstance(body, MemberAdmitBody):
        process_member_admit(view, sender, member, body, height)
    else:
        process_member_revoke(view, sender, member, body, height)
    # The body rules never touch the sender's own entry (a registrar cannot revoke itself).
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
    """Admit an address, or re-admit a revoked one keeping its nonce so nothing replays."""
    require_registrar(member)
    existing = view.get_member(body.address)
    # Verify the address is not an active member already.
    if existing is not None and not existing.revoked:
        raise InvalidTransaction(
            f"{encode_address(body.address)} is already a member ({existing.role})",
            "already_member",
        )
    nonce = 0 if existing is None else existing.nonce
    view.put_member(body.address, Member(body.role, nonce, False, height))


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
    view.put_member(body.address, replace(existing, revoked=True, revoked_height=height))


def require_registrar(member: Member) -> None:
    """Raise unless the sender is a registrar."""
    if member.role != "registrar":
        raise InvalidTransaction(
            f"only a registrar may admit or revoke members, sender is a {member.role}",
            "not_registrar",
        )
