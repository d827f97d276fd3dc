"""Ledger state: the key schema, member and record entries, an overlay view, the state root.

State is a key-value map. The core reads it through `StateReader` (the node backs it
with LevelDB, tests with a dict) and never mutates the base: a block is applied to a
`StateView` overlay whose write set the node stores in the same batch as the block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from danangchain.address import ADDRESS_SIZE
from danangchain.encoding import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_optional_bytes,
    expect_str,
    pack,
    unpack,
)
from danangchain.errors import DecodeError
from danangchain.transaction import HASH_SIZE, MAX_CATEGORY_SIZE, MAX_MEMO_SIZE

DOMAIN_STATE = "danangchain/state/v1"
EMPTY_ROOT = bytes(32)

PREFIX_MEMBER = b"M"
PREFIX_RECORD = b"R"
# Three validator sets, so every node and auditor agrees which set signs which height:
# U signed the last block, V signs the next one, W the one after (a change decided in
# block h is written to W and so signs from h+2).
KEY_LAST_VALIDATORS = b"U"
KEY_VALIDATORS = b"V"
KEY_NEXT_VALIDATORS = b"W"
PREFIX_VALIDATOR_VOTE = b"P"
PREFIX_KEY_BINDING = b"K"
PREFIX_NODE = b"N"
PREFIX_NODE_NAME = b"O"
# C + a witness's address: the height and block hash of its last checkpoint on chain.
PREFIX_WITNESS_CHECKPOINT = b"C"
# E + a member's address: the X25519 key sealed records are encrypted to for it.
PREFIX_ENCRYPTION_KEY = b"E"
# The network's audit keys: every sealed record is also encrypted to each of them.
KEY_AUDIT_KEYS = b"A"

WriteSet = Mapping[bytes, bytes | None]


class StateReader(Protocol):
    """Read access to committed state, keyed by the schema below."""

    def get(self, key: bytes) -> bytes | None:
        """Return the value stored at key, or None."""
        ...


@dataclass(frozen=True, slots=True)
class Member:
    """An admitted address: its role, next-nonce bookkeeping and revocation."""

    role: str
    nonce: int
    revoked: bool
    admitted_height: int
    revoked_height: int | None = None
    public_key: bytes | None = None  # the key bound by a rotation; None: the address's own


@dataclass(frozen=True, slots=True)
class Record:
    """A committed record and whether its counterparty endorsed it."""

    creator: bytes
    category: str
    doc_hash: bytes | None  # None: a payment recorded without a document
    amount: int | None
    counterparty: bytes | None
    memo: str
    reference: bytes | None
    reference_kind: str | None
    height: int
    endorsed_height: int | None = None
    cancelled_height: int | None = None
    # A sealed record (kind sealed_record): the commitment to its encrypted content, which
    # nodes keep beside the chain; doc_hash is then a hiding commitment, amount and memo
    # are empty here. erased_height: when its content was erased for good.
    content_hash: bytes | None = None
    erased_height: int | None = None


def member_key(address: bytes) -> bytes:
    """Return the state key of a member entry."""
    return PREFIX_MEMBER + address


def validator_vote_key(change_id: bytes) -> bytes:
    """Return the state key of the votes pending for one validator change."""
    return PREFIX_VALIDATOR_VOTE + change_id


def key_binding_key(key_address: bytes) -> bytes:
    """Return the state key that maps a rotated-in key (by its own address) to its member."""
    return PREFIX_KEY_BINDING + key_address


def node_key(public_key: bytes) -> bytes:
    """Return the state key of a node's registry entry."""
    return PREFIX_NODE + public_key


def node_name_key(name: str) -> bytes:
    """Return the state key that maps a registered node's name to its public key."""
    return PREFIX_NODE_NAME + name.encode()


def witness_checkpoint_key(address: bytes) -> bytes:
    """Return the state key of a witness's last checkpoint on chain."""
    return PREFIX_WITNESS_CHECKPOINT + address


def encryption_key_key(address: bytes) -> bytes:
    """Return the state key of a member's published encryption key."""
    return PREFIX_ENCRYPTION_KEY + address


def record_key(record_id: bytes) -> bytes:
    """Return the state key of a record entry."""
    return PREFIX_RECORD + record_id


def encode_member(member: Member) -> bytes:
    """Encode a member entry canonically."""
    return pack(
        [
            member.role,
            member.nonce,
            member.revoked,
            member.admitted_height,
            member.revoked_height,
            member.public_key,
        ]
    )


@lru_cache(maxsize=16_384)
def decode_member(data: bytes) -> Member:
    """Decode a member entry (remembered per encoding: members are read several times per
    transaction, and a Member is immutable)."""
    role, nonce, revoked, admitted, revoked_height, key = expect_list(unpack(data), 6, "member")
    if not isinstance(revoked, bool):
        raise DecodeError("member.revoked: expected a boolean")
    return Member(
        role=expect_str(role, "role", 16),
        nonce=expect_int(nonce, "nonce"),
        revoked=revoked,
        admitted_height=expect_int(admitted, "admitted_height"),
        revoked_height=None if revoked_height is None else expect_int(revoked_height, "height"),
        public_key=expect_optional_bytes(key, "public_key", 32),
    )


def encode_record(record: Record) -> bytes:
    """Encode a record entry canonically: a plain record keeps its 11 fields, a sealed one
    adds its content hash and erasure height."""
    sealed = [] if record.content_hash is None else [record.content_hash, record.erased_height]
    return pack(
        [
            record.creator,
            record.category,
            record.doc_hash,
            record.amount,
            record.counterparty,
            record.memo,
            record.reference,
            record.reference_kind,
            record.height,
            record.endorsed_height,
            record.cancelled_height,
            *sealed,
        ]
    )


def decode_record(data: bytes) -> Record:
    """Decode a record entry."""
    fields: list[Any] = unpack(data)
    content_hash, erased = None, None
    if isinstance(fields, list) and len(fields) == 13:
        content_hash = expect_bytes(fields[11], "content_hash", size=HASH_SIZE)
        erased = None if fields[12] is None else expect_int(fields[12], "erased_height")
        fields = fields[:11]
    fields = expect_list(fields, 11, "record")
    creator, category, doc_hash, amount, counterparty, memo, ref, ref_kind = fields[:8]
    height, endorsed, cancelled = fields[8:]
    return Record(
        creator=expect_bytes(creator, "creator", size=ADDRESS_SIZE),
        category=expect_str(category, "category", MAX_CATEGORY_SIZE),
        doc_hash=expect_optional_bytes(doc_hash, "doc_hash", HASH_SIZE),
        amount=None if amount is None else expect_int(amount, "amount"),
        counterparty=expect_optional_bytes(counterparty, "counterparty", ADDRESS_SIZE),
        memo=expect_str(memo, "memo", MAX_MEMO_SIZE),
        reference=expect_optional_bytes(ref, "reference", HASH_SIZE),
        reference_kind=None if ref_kind is None else expect_str(ref_kind, "reference_kind", 16),
        height=expect_int(height, "height"),
        endorsed_height=None if endorsed is None else expect_int(endorsed, "endorsed_height"),
        cancelled_height=None if cancelled is None else expect_int(cancelled, "cancelled_height"),
        content_hash=content_hash,
        erased_height=erased,
    )


class StateView:
    """A copy-on-write overlay over committed state; the base is never changed."""

    __slots__ = ("_base", "_writes")

    def __init__(self, base: StateReader, writes: dict[bytes, bytes | None] | None = None) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | None] = dict(writes or {})

    def get(self, key: bytes) -> bytes | None:
        """Return the value at key, seeing this view's own writes first."""
        if key in self._writes:
            return self._writes[key]
        return self._base.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        """Record a write (None deletes) in this view only."""
        self._writes[key] = value

    def fork(self) -> StateView:
        """Return a child view whose writes can be kept or thrown away as a unit."""
        return StateView(self)

    @property
    def writes(self) -> dict[bytes, bytes | None]:
        """Return a copy of this view's write set."""
        return dict(self._writes)

    def get_member(self, address: bytes) -> Member | None:
        """Return the member entry of an address, or None."""
        data = self.get(member_key(address))
        return None if data is None else decode_member(data)

    def put_member(self, address: bytes, member: Member) -> None:
        """Write a member entry."""
        self.put(member_key(address), encode_member(member))

    def get_record(self, record_id: bytes) -> Record | None:
        """Return a record entry, or None."""
        data = self.get(record_key(record_id))
        return None if data is None else decode_record(data)

    def put_record(self, record_id: bytes, record: Record) -> None:
        """Write a record entry."""
        self.put(record_key(record_id), encode_record(record))

    def get_encryption_key(self, address: bytes) -> bytes | None:
        """Return a member's published X25519 encryption key, or None."""
        return self.get(encryption_key_key(address))

    def get_audit_keys(self) -> tuple[bytes, ...]:
        """Return the network's audit keys (X25519), in order; none before a registrar
        sets them."""
        data = self.get(KEY_AUDIT_KEYS)
        if data is None:
            return ()
        keys = unpack(data)
        if not isinstance(keys, list) or not all(isinstance(key, bytes) for key in keys):
            raise DecodeError("audit keys: expected an array of keys")
        return tuple(keys)


class EmptyState:
    """The state before genesis: every key is absent."""

    def get(self, key: bytes) -> bytes | None:
        """Return None for every key."""
        return None


class DictState:
    """State held in a dict: for tests and for the auditor's replay."""

    def __init__(self, items: dict[bytes, bytes] | None = None) -> None:
        self.items: dict[bytes, bytes] = dict(items or {})

    def get(self, key: bytes) -> bytes | None:
        """Return the value at key, or None."""
        return self.items.get(key)

    def apply(self, writes: WriteSet) -> None:
        """Apply a committed write set."""
        for key, value in writes.items():
            if value is None:
                self.items.pop(key, None)
            else:
                self.items[key] = value


def compute_state_root(previous_root: bytes, writes: WriteSet) -> bytes:
    """Chain the previous root with the block's sorted write set."""
    entries = [[key, writes[key]] for key in sorted(writes)]
    return hashlib.sha256(pack([DOMAIN_STATE, previous_root, entries])).digest()
