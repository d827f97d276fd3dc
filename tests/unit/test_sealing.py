"""Sealed records' envelope: it opens for each recipient and for nobody else, and any
change to it, or a move to another record, makes it fail to open."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.errors import SealedError
from danangchain.sealing import (
    MAX_MEMO_SIZE,
    Binding,
    PrivateFields,
    compute_content_hash,
    compute_document_commitment,
    compute_document_salt,
    decode_envelope,
    decode_gossip,
    derive_encryption_key,
    derive_salt_key,
    encode_envelope,
    encode_gossip,
    encryption_public_key,
    is_valid_encryption_key,
    open_envelope,
    seal,
)

BINDING = Binding("danang-test", bytes(range(20)), 7, "sealed_record")
PRIVATE = [derive_encryption_key(bytes([seed]) * 32) for seed in (1, 2, 3, 4)]
PUBLIC = [encryption_public_key(key) for key in PRIVATE]


def randbytes_from(seed: int):  # type: ignore[no-untyped-def]
    generator = random.Random(seed)
    return generator.randbytes


memos = st.text(max_size=120).filter(lambda memo: len(memo.encode()) <= MAX_MEMO_SIZE)
amounts = st.none() | st.integers(min_value=0, max_value=10**18)


@given(amount=amounts, memo=memos, seed=st.integers(0, 2**32))
def test_every_recipient_opens_what_was_sealed_and_an_outsider_cannot(
    amount: int | None, memo: str, seed: int
) -> None:
    data = seal(PrivateFields(amount, memo), BINDING, PUBLIC[:3], randbytes_from(seed))
    envelope = decode_envelope(data)
    assert encode_envelope(envelope) == data
    for key in PRIVATE[:3]:
        assert open_envelope(envelope, key) == PrivateFields(amount, memo)
    with pytest.raises(SealedError, match="not one of the record's recipients"):
        open_envelope(envelope, PRIVATE[3])


@given(position=st.integers(min_value=0), flip=st.integers(1, 255), seed=st.integers(0, 2**16))
def test_any_changed_byte_makes_the_envelope_fail_to_open_or_to_decode(
    position: int, flip: int, seed: int
) -> None:
    data = bytearray(seal(PrivateFields(5, "secret"), BINDING, PUBLIC[:2], randbytes_from(seed)))
    data[position % len(data)] ^= flip
    with pytest.raises(SealedError):
        envelope = decode_envelope(bytes(data))
        # A change in a recipient's public key leaves the other recipient able to open.
        open_envelope(envelope, PRIVATE[0])
        open_envelope(envelope, PRIVATE[1])


@pytest.mark.parametrize(
    "moved",
    [
        Binding("another-chain", BINDING.creator, 7, "sealed_record"),
        Binding(BINDING.chain_id, bytes(20), 7, "sealed_record"),
        Binding(BINDING.chain_id, BINDING.creator, 8, "sealed_record"),
        Binding(BINDING.chain_id, BINDING.creator, 7, "record"),
    ],
)
def test_an_envelope_moved_to_another_record_does_not_open(moved: Binding) -> None:
    envelope = decode_envelope(seal(PrivateFields(1, "m"), BINDING, PUBLIC[:1], randbytes_from(1)))
    moved_envelope = type(envelope)(moved, envelope.recipients, envelope.ciphertext)
    with pytest.raises(SealedError, match="does not open"):
        open_envelope(moved_envelope, PRIVATE[0])


def test_the_content_hash_commits_to_every_byte() -> None:
    data = seal(PrivateFields(1, "m"), BINDING, PUBLIC[:1], randbytes_from(1))
    assert compute_content_hash(data) != compute_content_hash(data[:-1] + b"\x00")
    assert len(compute_content_hash(data)) == 32


def test_seal_refuses_no_recipient_too_many_and_a_bad_key() -> None:
    with pytest.raises(SealedError, match="1 to 16 recipients"):
        seal(PrivateFields(1, "m"), BINDING, [], randbytes_from(1))
    keys = [encryption_public_key(derive_encryption_key(bytes([i]) * 32)) for i in range(17)]
    with pytest.raises(SealedError, match="1 to 16 recipients"):
        seal(PrivateFields(1, "m"), BINDING, keys, randbytes_from(1))
    with pytest.raises(SealedError, match="not an X25519 key"):
        seal(PrivateFields(1, "m"), BINDING, [bytes(32)], randbytes_from(1))
    assert not is_valid_encryption_key(bytes(32)) and not is_valid_encryption_key(b"short")


@given(st.binary(max_size=200))
def test_decoding_garbage_is_a_sealed_error_never_a_crash(data: bytes) -> None:
    with pytest.raises(SealedError):
        decode_envelope(data)


@given(doc=st.binary(min_size=32, max_size=32), seed=st.integers(0, 255))
def test_the_document_commitment_is_deterministic_per_member_and_hiding(
    doc: bytes, seed: int
) -> None:
    salt_key = derive_salt_key(bytes([seed]) * 32)
    salt = compute_document_salt(salt_key, doc)
    assert salt == compute_document_salt(salt_key, doc)
    commitment = compute_document_commitment(salt, doc)
    assert commitment != hashlib.sha256(doc).digest() and commitment != doc
    other = compute_document_salt(derive_salt_key(bytes([(seed + 1) % 256]) * 32), doc)
    assert compute_document_commitment(other, doc) != commitment


def test_encryption_and_salt_keys_are_independent_of_each_other_and_the_seed() -> None:
    seed = bytes([3]) * 32
    assert len({derive_encryption_key(seed), derive_salt_key(seed), seed}) == 3


def test_gossip_carries_a_transaction_alone_or_with_its_sealed_content() -> None:
    tx_bytes = b"\x97" + bytes(10)
    assert decode_gossip(encode_gossip(tx_bytes, None)) == (tx_bytes, None)
    assert decode_gossip(encode_gossip(tx_bytes, b"sealed")) == (tx_bytes, b"sealed")
