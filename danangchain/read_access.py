"""Signed reads and who may read what: the pure half of the client API's access control.

A member reads its data by signing the request itself: the chain id, the method, the
path with its query, the time and a random nonce (`compute_read_signing_bytes`). The
node checks the signature, the time against its clock and the nonce against the nonces
it saw inside the window; only the clock and that memory live in `node/`. Who may read
what is decided here, from the committed state: a member reads what it made or what
names it, an auditor reads everything, an auditor or a witness streams the whole chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from danangchain import ed25519
from danangchain.address import encode_address
from danangchain.errors import DanangChainError
from danangchain.rules import get_sender_address
from danangchain.signing import compute_read_signing_bytes
from danangchain.state import Record, StateView
from danangchain.transaction import (
    ROLE_NODE,
    ROLE_VALIDATOR,
    ROLE_WITNESS,
    RecordBody,
    SealedRecordBody,
    Transaction,
)

AUTH_SCHEME = "DanangChain"
# How far a signed read's time may be from the node's clock, either way; a nonce is
# remembered for twice this, so a request is accepted at most once.
READ_WINDOW_MS = 60_000
NONCE_SIZE = 16
MIN_NONCE_SIZE, MAX_NONCE_SIZE = 8, 32
MAX_AUTHORIZATION_SIZE = 512
ROLE_AUDITOR = "auditor"
# The roles that may stream the whole chain (GET /chain/export): an auditor replays it,
# a witness checks and cosigns it, and a validator's or admitted full node's own key
# backs up online the chain its operator already stores in full.
CHAIN_READER_ROLES = (ROLE_AUDITOR, ROLE_WITNESS, ROLE_VALIDATOR, ROLE_NODE)

Equation = Callable[[bytes, bytes, bytes], bool]

_FIELD = re.compile(r"\s*([a-z]+)=([0-9a-f]+)\s*")


class ReadRefused(DanangChainError):
    """A signed read the node must refuse; `code` is the reason a client is told."""

    code = "auth_required"


@dataclass(frozen=True, slots=True)
class SignedRead:
    """The credentials of one request: who signs, when, a nonce and the signature."""

    public_key: bytes
    time_ms: int
    nonce: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Reader:
    """The member a signed read comes from: its address, role and the key that signed."""

    address: bytes
    role: str
    public_key: bytes


def sign_read(
    key: ed25519.SigningKey, chain_id: str, method: str, path: str, time_ms: int, nonce: bytes
) -> SignedRead:
    """Sign one read of `path` (with its query) on a chain at a time."""
    signed = compute_read_signing_bytes(chain_id, method, path, time_ms, nonce)
    return SignedRead(key.public_key, time_ms, nonce, ed25519.sign(key, signed))


def encode_authorization(read: SignedRead) -> str:
    """Return the Authorization header value that carries a signed read."""
    return (
        f"{AUTH_SCHEME} key={read.public_key.hex()}, time={read.time_ms}, "
        f"nonce={read.nonce.hex()}, signature={read.signature.hex()}"
    )


def decode_authorization(text: str) -> SignedRead:
    """Parse an Authorization header value; raise ReadRefused if it is not one of ours."""
    scheme, _, rest = text.strip().partition(" ")
    if scheme != AUTH_SCHEME:
        raise ReadRefused.of(
            "sign the request: Authorization: {scheme} key=..., time=..., nonce=..., signature=...",
            rule="auth_required",
            scheme=AUTH_SCHEME,
        )
    fields: dict[str, str] = {}
    for part in rest.split(",") if len(text) <= MAX_AUTHORIZATION_SIZE else ["!"]:
        match = _FIELD.fullmatch(part)
        if match is None or match.group(1) in fields:
            fields.clear()
            break
        fields[match.group(1)] = match.group(2)
    if set(fields) != {"key", "time", "nonce", "signature"} or not _has_sizes(fields):
        raise ReadRefused.of(
            "the Authorization header must be {scheme} key=<64 hex>, time=<ms>, "
            "nonce=<16 to 64 hex>, signature=<128 hex>",
            rule="bad_signature",
            scheme=AUTH_SCHEME,
        )
    return SignedRead(
        bytes.fromhex(fields["key"]),
        int(fields["time"]),
        bytes.fromhex(fields["nonce"]),
        bytes.fromhex(fields["signature"]),
    )


def _has_sizes(fields: dict[str, str]) -> bool:
    return (
        len(fields["key"]) == 64
        and len(fields["signature"]) == 128
        and 2 * MIN_NONCE_SIZE <= len(fields["nonce"]) <= 2 * MAX_NONCE_SIZE
        and len(fields["nonce"]) % 2 == 0
        and fields["time"].isdigit()
        and len(fields["time"]) <= 15
    )


def check_signed_read(
    view: StateView,
    chain_id: str,
    method: str,
    path: str,
    read: SignedRead,
    now_ms: int,
    equation: Equation | None = None,
) -> Reader:
    """Return the member a signed read comes from, or raise ReadRefused saying why
    (the replay of a nonce is the node's to catch: it remembers them)."""
    # Verify the request is fresh: outside the window a nonce may have been forgotten.
    if abs(now_ms - read.time_ms) > READ_WINDOW_MS:
        raise ReadRefused.of(
            "the request was signed {seconds}s from the node's time; at most {window}s is "
            "accepted: check the clock",
            rule="stale_request",
            seconds=abs(now_ms - read.time_ms) // 1000,
            window=READ_WINDOW_MS // 1000,
        )
    # Verify the signature covers this chain, method, path, time and nonce.
    signed = compute_read_signing_bytes(chain_id, method, path, read.time_ms, read.nonce)
    if not ed25519.is_valid_signature(read.public_key, signed, read.signature, equation):
        raise ReadRefused.of(
            "the signature does not match this request on chain {chain_id}",
            rule="bad_signature",
            chain_id=chain_id,
        )
    return get_reader(view, read.public_key)


def get_reader(view: StateView, public_key: bytes) -> Reader:
    """Return the active member a key signs for; raise ReadRefused for any other key."""
    address = get_sender_address(view, public_key)
    member = view.get_member(address)
    # Verify the key signs for an admitted member.
    if member is None:
        raise ReadRefused.of(
            "key {key} signs for no member", rule="unknown_key", key=public_key.hex()[:16]
        )
    # Verify the member stands and the key was not replaced by a rotation.
    if member.revoked:
        raise ReadRefused.of(
            "{address} was revoked at height {height}",
            rule="revoked_key",
            address=encode_address(address),
            height=member.revoked_height,
        )
    if member.public_key is not None and member.public_key != public_key:
        raise ReadRefused.of(
            "this key no longer signs for {address}: a registrar replaced it",
            rule="revoked_key",
            address=encode_address(address),
        )
    return Reader(address, member.role, public_key)


def is_entitled(reader: Reader, concerned: Iterable[bytes]) -> bool:
    """Tell whether a reader may read data about `concerned`: an auditor reads all, a
    member what it made or what names it."""
    return reader.role == ROLE_AUDITOR or reader.address in set(concerned)


def can_read_chain(reader: Reader) -> bool:
    """Tell whether a reader may stream the whole chain: auditors, witnesses, and the
    nodes' own keys (validators, admitted full nodes)."""
    return reader.role in CHAIN_READER_ROLES


def get_record_parties(record: Record) -> frozenset[bytes]:
    """Return the members a record concerns: its creator and its counterparty."""
    parties = {record.creator}
    if record.counterparty is not None:
        parties.add(record.counterparty)
    return frozenset(parties)


def is_private(tx: Transaction) -> bool:
    """Tell whether a transaction carries a member's private data: a record does (its
    amount, counterparty, document digest and memo), and a sealed record (its
    counterparty and document commitment; its amount and memo are not in it at all);
    votes, admissions, anchors and checkpoints are the network's public business."""
    return isinstance(tx.body, RecordBody | SealedRecordBody)
