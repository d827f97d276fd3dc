"""Block headers and blocks: fields, canonical encoding, hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from danangchain import ed25519
from danangchain.encoding import expect_bytes, expect_int, expect_list, expect_str, pack, unpack
from danangchain.errors import DecodeError, InvalidTransaction
from danangchain.merkle import compute_merkle_root
from danangchain.transaction import (
    MAX_CHAIN_ID_SIZE,
    MAX_TX_SIZE,
    Transaction,
    decode_transaction,
)
from danangchain.validators import (
    CommitCertificate,
    decode_certificate_fields,
    encode_certificate_fields,
)

BLOCK_VERSION = 1
HASH_SIZE = 32
MAX_BLOCK_TXS = 5000
MAX_BLOCK_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Header:
    """What a block commits to; its hash is the block's identity."""

    chain_id: str
    height: int
    time_ms: int
    previous_hash: bytes
    tx_root: bytes
    tx_count: int
    state_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    proposer: bytes
    last_commit_hash: bytes


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions (as their canonical bytes) and the previous certificate."""

    header: Header
    tx_bytes: tuple[bytes, ...]
    last_commit: CommitCertificate | None
    transactions: tuple[Transaction, ...] = field(compare=False, repr=False, default=())

    @property
    def height(self) -> int:
        """Return the block's height."""
        return self.header.height

    @property
    def hash(self) -> bytes:
        """Return the block's hash (the hash of its header)."""
        return compute_header_hash(self.header)


def encode_header_fields(header: Header) -> list[Any]:
    """Return a header's fixed-order field array."""
    return [
        BLOCK_VERSION,
        header.chain_id,
        header.height,
        header.time_ms,
        header.previous_hash,
        header.tx_root,
        header.tx_count,
        header.state_root,
        header.validators_hash,
        header.next_validators_hash,
        header.proposer,
        header.last_commit_hash,
    ]


def encode_header(header: Header) -> bytes:
    """Encode a header canonically."""
    return pack(encode_header_fields(header))


def compute_header_hash(header: Header) -> bytes:
    """Return the SHA-256 of a header's canonical encoding."""
    return hashlib.sha256(encode_header(header)).digest()


def decode_header_fields(value: Any) -> Header:
    """Build a header from its decoded field array."""
    fields = expect_list(value, 12, "header")
    if expect_int(fields[0], "block version") != BLOCK_VERSION:
        raise DecodeError(f"block version {fields[0]!r} is not supported")
    return Header(
        chain_id=expect_str(fields[1], "chain_id", MAX_CHAIN_ID_SIZE),
        height=expect_int(fields[2], "height", minimum=1),
        time_ms=expect_int(fields[3], "time_ms"),
        previous_hash=expect_bytes(fields[4], "previous_hash", size=HASH_SIZE),
        tx_root=expect_bytes(fields[5], "tx_root", size=HASH_SIZE),
        tx_count=expect_int(fields[6], "tx_count", maximum=MAX_BLOCK_TXS),
        state_root=expect_bytes(fields[7], "state_root", size=HASH_SIZE),
        validators_hash=expect_bytes(fields[8], "validators_hash", size=HASH_SIZE),
        next_validators_hash=expect_bytes(fields[9], "next_validators_hash", size=HASH_SIZE),
        proposer=expect_bytes(fields[10], "proposer", size=ed25519.PUBLIC_KEY_SIZE),
        last_commit_hash=expect_bytes(fields[11], "last_commit_hash", size=HASH_SIZE),
    )


def encode_block(block: Block) -> bytes:
    """Encode a block canonically."""
    last_commit = (
        None if block.last_commit is None else encode_certificate_fields(block.last_commit)
    )
    return pack([encode_header_fields(block.header), list(block.tx_bytes), last_commit])


def decode_block(data: bytes) -> Block:
    """Decode a block and its transactions; raise DecodeError with the reason."""
    header_fields, txs, last_commit = expect_list(unpack(data, max_size=MAX_BLOCK_SIZE), 3, "block")
    header = decode_header_fields(header_fields)
    if not isinstance(txs, list) or len(txs) > MAX_BLOCK_TXS:
        raise DecodeError(f"block transactions: expected at most {MAX_BLOCK_TXS}")
    tx_bytes = tuple(expect_bytes(t, "transaction", max_size=MAX_TX_SIZE) for t in txs)
    transactions = []
    for index, raw in enumerate(tx_bytes):
        try:
            transactions.append(decode_transaction(raw))
        except InvalidTransaction as exc:
            raise DecodeError(f"transaction {index}: {exc}") from None
    cert = None if last_commit is None else decode_certificate_fields(last_commit)
    return Block(header, tx_bytes, cert, tuple(transactions))


def compute_tx_root(tx_bytes: tuple[bytes, ...] | list[bytes]) -> bytes:
    """Return the Merkle root over a block's encoded transactions."""
    return compute_merkle_root(list(tx_bytes))
