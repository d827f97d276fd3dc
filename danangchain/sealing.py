"""Sealed records: private fields encrypted to the parties entitled to read them.

A sealed record's private fields (its amount and memo) are encrypted once under a fresh
random content key with ChaCha20-Poly1305; the content key is wrapped, sealed-box style,
to each recipient's X25519 public key (the creator, the counterparty, every audit key in
state): a fresh ephemeral X25519 key per recipient, HKDF-SHA256 over the shared secret
and both public keys, ChaCha20-Poly1305 again. The associated data of every AEAD call
binds the envelope to one record: the chain id, the creator's member address, the
transaction's nonce and kind, so an envelope copied to another record does not open.

The envelope never enters a block. The transaction carries only `content_hash`, the
SHA-256 of the envelope's bytes; nodes keep the envelope in an erasable table beside the
chain, and an `erase` transaction makes them delete it (danangchain/rules.py).

The document digest of a sealed record is a hiding commitment: SHA-256 over a domain, a
32-byte salt and the document's SHA-256. The salt is an HMAC of the digest under a key
derived from the member's signing seed, so the same member recording the same document
gets the same commitment (nodes still refuse the duplicate) while nobody without the salt
can test a guessed document against the chain.

Like the rest of the core, this module reads no random source: callers pass `randbytes`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from danangchain.address import ADDRESS_SIZE
from danangchain.encoding import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_str,
    pack,
    unpack,
)
from danangchain.errors import DecodeError, SealedError

ENVELOPE_VERSION = 1
KEY_SIZE = 32
TAG_SIZE = 16
WRAPPED_KEY_SIZE = KEY_SIZE + TAG_SIZE
SALT_SIZE = 32
MAX_RECIPIENTS = 16
# Private fields (at most a 512-byte memo and an amount) plus every wrapped key.
MAX_ENVELOPE_SIZE = 3072
MAX_MEMO_SIZE = 512
MAX_AMOUNT = 10**18
# One key per AEAD message (a fresh content key, a fresh wrapping key per recipient), so
# a constant nonce never repeats under one key.
_NONCE = bytes(12)
DOMAIN_AAD = "danangchain/sealed/v1"
DOMAIN_CONTENT = "danangchain/sealed/content/v1"
_WRAP_INFO = b"danangchain/sealed/wrap/v1"
_ENCRYPTION_KEY_INFO = b"danangchain/x25519/v1"
_SALT_KEY_INFO = b"danangchain/doc-salt/v1"
_COMMITMENT_DOMAIN = b"danangchain/doc-commitment/v1"


@dataclass(frozen=True, slots=True)
class PrivateFields:
    """What a sealed record hides: its amount and memo."""

    amount: int | None
    memo: str


@dataclass(frozen=True, slots=True)
class Binding:
    """What ties an envelope to one transaction: its network, creator, nonce and kind."""

    chain_id: str
    creator: bytes
    nonce: int
    kind: str


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """The content key sealed to one recipient's X25519 public key."""

    recipient: bytes
    ephemeral: bytes
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A sealed record's private fields: one ciphertext, one wrapped key per recipient."""

    binding: Binding
    recipients: tuple[WrappedKey, ...]
    ciphertext: bytes


def derive_encryption_key(seed: bytes) -> bytes:
    """Return the X25519 private key a member's Ed25519 seed gives (HKDF, its own domain):
    `keys new` makes both keys from one seed, so one keystore holds both."""
    return _hkdf(seed, b"", _ENCRYPTION_KEY_INFO)


def encryption_public_key(private_key: bytes) -> bytes:
    """Return the X25519 public key of a private key."""
    return _x25519_private(private_key).public_key().public_bytes_raw()


def derive_salt_key(seed: bytes) -> bytes:
    """Return the key a member's document salts are derived with (HKDF of the seed)."""
    return _hkdf(seed, b"", _SALT_KEY_INFO)


def compute_document_salt(salt_key: bytes, doc_hash: bytes) -> bytes:
    """Return the member's deterministic salt for one document: HMAC-SHA256(key, digest)."""
    return hmac.new(salt_key, doc_hash, hashlib.sha256).digest()


def compute_document_commitment(salt: bytes, doc_hash: bytes) -> bytes:
    """Return the hiding commitment to a document digest that a sealed record carries."""
    if len(salt) != SALT_SIZE or len(doc_hash) != 32:
        raise SealedError.of("a document salt and digest are 32 bytes each")
    return hashlib.sha256(_COMMITMENT_DOMAIN + salt + doc_hash).digest()


def compute_content_hash(envelope_bytes: bytes) -> bytes:
    """Return the commitment to an envelope that the transaction and the chain carry."""
    return hashlib.sha256(DOMAIN_CONTENT.encode() + envelope_bytes).digest()


def is_valid_encryption_key(public_key: bytes) -> bool:
    """Return whether bytes are an X25519 public key that gives a non-zero shared secret."""
    if len(public_key) != KEY_SIZE:
        return False
    probe = X25519PrivateKey.from_private_bytes(bytes(31) + b"\x40")
    try:
        probe.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        return False
    return True


def seal(
    fields: PrivateFields,
    binding: Binding,
    recipients: Sequence[bytes],
    randbytes: Callable[[int], bytes],
) -> bytes:
    """Encrypt the private fields to every recipient; return the envelope's bytes."""
    unique = sorted(set(recipients))
    if not unique or len(unique) > MAX_RECIPIENTS:
        raise SealedError.of("a sealed record has 1 to {limit} recipients", limit=MAX_RECIPIENTS)
    for recipient in unique:
        if not is_valid_encryption_key(recipient):
            raise SealedError.of("recipient key {key} is not an X25519 key", key=recipient.hex())
    aad = _associated_data(binding)
    content_key = randbytes(KEY_SIZE)
    plaintext = pack([fields.amount, fields.memo])
    ciphertext = ChaCha20Poly1305(content_key).encrypt(_NONCE, plaintext, aad)
    wrapped = []
    for recipient in unique:
        ephemeral = _x25519_private(randbytes(KEY_SIZE))
        ephemeral_public = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
        kek = _hkdf(shared, ephemeral_public + recipient, _WRAP_INFO)
        sealed_key = ChaCha20Poly1305(kek).encrypt(_NONCE, content_key, aad)
        wrapped.append(WrappedKey(recipient, ephemeral_public, sealed_key))
    envelope = Envelope(binding, tuple(wrapped), ciphertext)
    data = encode_envelope(envelope)
    if len(data) > MAX_ENVELOPE_SIZE:
        raise SealedError.of(
            "the sealed content is {size} bytes, the limit is {limit}",
            size=len(data),
            limit=MAX_ENVELOPE_SIZE,
        )
    return data


def open_envelope(envelope: Envelope, private_key: bytes) -> PrivateFields:
    """Return the private fields, opened with one recipient's X25519 private key; raise
    SealedError if the key is not a recipient or anything was changed."""
    public = encryption_public_key(private_key)
    mine = [entry for entry in envelope.recipients if entry.recipient == public]
    if not mine:
        raise SealedError.of("this key is not one of the record's recipients")
    aad = _associated_data(envelope.binding)
    entry = mine[0]
    shared = _x25519_private(private_key).exchange(
        X25519PublicKey.from_public_bytes(entry.ephemeral)
    )
    kek = _hkdf(shared, entry.ephemeral + public, _WRAP_INFO)
    try:
        content_key = ChaCha20Poly1305(kek).decrypt(_NONCE, entry.wrapped, aad)
        plaintext = ChaCha20Poly1305(content_key).decrypt(_NONCE, envelope.ciphertext, aad)
    except InvalidTag:
        raise SealedError.of("the sealed content does not open: changed, or moved") from None
    try:
        amount, memo = expect_list(unpack(plaintext), 2, "private fields")
        return PrivateFields(
            None if amount is None else expect_int(amount, "amount", maximum=MAX_AMOUNT),
            expect_str(memo, "memo", MAX_MEMO_SIZE),
        )
    except DecodeError as exc:
        raise SealedError.of("the sealed content is malformed: {reason}", reason=str(exc)) from None


def encode_envelope(envelope: Envelope) -> bytes:
    """Encode an envelope canonically."""
    binding = envelope.binding
    return pack(
        [
            ENVELOPE_VERSION,
            [binding.chain_id, binding.creator, binding.nonce, binding.kind],
            [[entry.recipient, entry.ephemeral, entry.wrapped] for entry in envelope.recipients],
            envelope.ciphertext,
        ]
    )


def decode_envelope(data: bytes) -> Envelope:
    """Decode an envelope strictly; raise SealedError if it is malformed."""
    try:
        return _decode_envelope(data)
    except DecodeError as exc:
        raise SealedError.of("the sealed content is malformed: {reason}", reason=str(exc)) from None


def _decode_envelope(data: bytes) -> Envelope:
    if len(data) > MAX_ENVELOPE_SIZE:
        raise DecodeError(f"an envelope is at most {MAX_ENVELOPE_SIZE} bytes")
    version, binding, recipients, ciphertext = expect_list(
        unpack(data, max_size=MAX_ENVELOPE_SIZE), 4, "envelope"
    )
    if expect_int(version, "envelope version") != ENVELOPE_VERSION:
        raise DecodeError(f"envelope version {version!r} is not supported")
    chain_id, creator, nonce, kind = expect_list(binding, 4, "envelope binding")
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise DecodeError(f"an envelope has 1 to {MAX_RECIPIENTS} recipients")
    entries = []
    for item in recipients:
        recipient, ephemeral, wrapped = expect_list(item, 3, "recipient")
        entries.append(
            WrappedKey(
                expect_bytes(recipient, "recipient", size=KEY_SIZE),
                expect_bytes(ephemeral, "ephemeral key", size=KEY_SIZE),
                expect_bytes(wrapped, "wrapped key", size=WRAPPED_KEY_SIZE),
            )
        )
    keys = [entry.recipient for entry in entries]
    if keys != sorted(set(keys)):
        raise DecodeError("an envelope's recipients are distinct and in order")
    return Envelope(
        Binding(
            expect_str(chain_id, "chain_id", 64),
            expect_bytes(creator, "creator", size=ADDRESS_SIZE),
            expect_int(nonce, "nonce", minimum=1),
            expect_str(kind, "kind", 32),
        ),
        tuple(entries),
        expect_bytes(ciphertext, "ciphertext", max_size=MAX_ENVELOPE_SIZE),
    )


def encode_gossip(tx_bytes: bytes, envelope: bytes | None) -> bytes:
    """Return what a node sends its peers for one transaction: its bytes alone, or with
    the sealed content that travels beside it (never in the block)."""
    return tx_bytes if envelope is None else pack([tx_bytes, envelope])


def decode_gossip(item: bytes) -> tuple[bytes, bytes | None]:
    """Split a gossiped item into the transaction's bytes and its sealed content, if any.
    A transaction encodes as a 7-element array, a pair as a 2-element one."""
    if item[:1] != b"\x92":
        return item, None
    try:
        tx_bytes, envelope = expect_list(unpack(item), 2, "sealed transaction")
        return (
            expect_bytes(tx_bytes, "transaction", max_size=8192),
            expect_bytes(envelope, "sealed content", max_size=MAX_ENVELOPE_SIZE),
        )
    except DecodeError:
        return item, None


def _associated_data(binding: Binding) -> bytes:
    return pack([DOMAIN_AAD, binding.chain_id, binding.creator, binding.nonce, binding.kind])


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt or None, info=info).derive(
        secret
    )


def _x25519_private(private_key: bytes) -> X25519PrivateKey:
    if len(private_key) != KEY_SIZE:
        raise SealedError.of("an X25519 private key is 32 bytes")
    return X25519PrivateKey.from_private_bytes(private_key)


def describe_recipients(envelope: Envelope) -> list[dict[str, Any]]:
    """Return the envelope's recipients as JSON-ready entries (public keys only)."""
    return [{"encryption_key": entry.recipient.hex()} for entry in envelope.recipients]
