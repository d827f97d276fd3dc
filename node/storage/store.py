"""The node's LevelDB store: the only module that imports plyvel.

Key layout (one table byte, then big-endian heights so keys sort in height order):
  b"b" height  -> block bytes            b"c" height -> commit certificate of that block
  b"t" tx_id   -> [height, index]        b"s" key    -> state value (the core's schema)
  b"a" address height index -> record id (records made by or about an address)
  b"m" name    -> metadata: schema version, genesis hash, tip
Each committed block is one WriteBatch written with sync=True, so after a kill at any
instant the store holds either all of a block or none of it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import plyvel

from danangchain.address import compute_address
from danangchain.block import Block, decode_block, encode_block
from danangchain.encoding import expect_bytes, expect_int, expect_list, pack, unpack
from danangchain.errors import DanangChainError
from danangchain.ledger import BlockResult, ChainTip
from danangchain.state import KEY_VALIDATORS
from danangchain.transaction import RecordBody, Transaction
from danangchain.validators import CommitCertificate, decode_certificate, encode_certificate

SCHEMA_VERSION = 1
_META_SCHEMA = b"mschema"
_META_GENESIS = b"mgenesis"
_META_TIP = b"mtip"
_META_SIGNING = b"msigning"


class StoreError(Exception):
    """The data folder cannot be used: corrupt, or made for another chain."""


class StoreCorruption(StoreError):
    """LevelDB found a checksum or format fault while reading the data folder."""


def _reason(exc: Exception) -> str:
    """Return LevelDB's message as text (plyvel hands it over as bytes)."""
    message = exc.args[0] if exc.args else exc
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _height(height: int) -> bytes:
    return struct.pack(">Q", height)


def block_key(height: int) -> bytes:
    """Return the key of the block at a height."""
    return b"b" + _height(height)


def certificate_key(height: int) -> bytes:
    """Return the key of the certificate of the block at a height."""
    return b"c" + _height(height)


def tx_key(tx_id: bytes) -> bytes:
    """Return the key of a transaction's location."""
    return b"t" + tx_id


def pending_key(tx_id: bytes) -> bytes:
    """Return the key of a transaction admitted to the mempool and not yet committed."""
    return b"p" + tx_id


def validator_set_key(height: int) -> bytes:
    """Return the key of the validator set that signs from a height on."""
    return b"v" + _height(height)


def state_key(key: bytes) -> bytes:
    """Return the store key of a state entry."""
    return b"s" + key


def address_record_key(address: bytes, height: int, index: int) -> bytes:
    """Return the key of an address-to-record index entry."""
    return b"a" + address + _height(height) + struct.pack(">I", index)


def encode_tip(tip: ChainTip) -> bytes:
    """Encode the tip metadata."""
    return pack([tip.height, tip.block_hash, tip.time_ms, tip.state_root])


def decode_tip(data: bytes) -> ChainTip:
    """Decode the tip metadata."""
    height, block_hash, time_ms, state_root = expect_list(unpack(data), 4, "tip")
    return ChainTip(
        expect_int(height, "tip height"),
        expect_bytes(block_hash, "tip hash", size=32),
        expect_int(time_ms, "tip time"),
        expect_bytes(state_root, "tip state root", size=32),
    )


class CommittedState:
    """The core's StateReader over the store's state table."""

    __slots__ = ("_db",)

    def __init__(self, db: plyvel.DB) -> None:
        self._db = db

    def get(self, key: bytes) -> bytes | None:
        """Return the committed value at a state key, or None."""
        value: bytes | None = self._db.get(state_key(key), verify_checksums=True)
        return value


class Store:
    """Blocks, certificates, the transaction index, state and the tip, in one LevelDB."""

    def __init__(self, path: str) -> None:
        try:
            self._db = plyvel.DB(path, create_if_missing=True, paranoid_checks=True)
        except plyvel.IOError as exc:
            raise StoreError(f"cannot open the data folder {path}: {_reason(exc)}") from None
        except plyvel.CorruptionError as exc:
            raise StoreError(f"the data folder {path} is corrupt: {_reason(exc)}") from None
        self.state = CommittedState(self._db)

    @classmethod
    def open_existing(cls, path: str) -> Store:
        """Open a data folder that must already hold a store, creating nothing (audit, export).

        LevelDB lets one process open a folder at a time, so this fails while its node runs.
        """
        if not (Path(path) / "CURRENT").is_file():
            raise StoreError(f"no node data in {path}: is it a node's data folder?")
        store = cls.__new__(cls)
        try:
            # No block cache: a block read once without its checksum verified must not be
            # served from memory to a later read that asks for verification.
            store._db = plyvel.DB(
                path, create_if_missing=False, paranoid_checks=True, lru_cache_size=0
            )
        except plyvel.IOError as exc:
            if "lock" in _reason(exc).lower():
                raise StoreError(
                    f"the data folder {path} is in use: stop its node first "
                    "(LevelDB lets one process open it at a time)"
                ) from None
            raise StoreError(f"cannot open the data folder {path}: {_reason(exc)}") from None
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"the data folder {path} is corrupt: {_reason(exc)}") from None
        except plyvel.Error as exc:
            raise StoreError(f"cannot open the data folder {path}: {_reason(exc)}") from None
        store.state = CommittedState(store._db)
        return store

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # Consensus: the signing record and evidence of equivocation

    def put_signing_record(self, record: bytes) -> None:
        """Sync what this validator last signed to disk, before the message leaves."""
        self._db.put(_META_SIGNING, record, sync=True)

    def get_signing_record(self) -> bytes | None:
        """Return the last signing record, or None."""
        value: bytes | None = self._db.get(_META_SIGNING)
        return value

    def put_evidence(self, height: int, digest: bytes, evidence: bytes) -> None:
        """Keep two conflicting signed votes of one validator."""
        self._db.put(b"e" + _height(height) + digest[:8], evidence)

    def put_pending(self, admitted: Sequence[tuple[bytes, bytes]]) -> None:
        """Keep admitted transactions (id, bytes) until their block commits, in one write.
        Not synced: the write is in the OS when this returns, so a killed node keeps them
        (a power cut may not)."""
        with self._db.write_batch() as batch:
            for tx_id, tx_bytes in admitted:
                batch.put(pending_key(tx_id), tx_bytes)

    def forget_pending(self, tx_ids: Sequence[bytes]) -> None:
        """Drop kept transactions that will never commit (refused after a block)."""
        if tx_ids:
            with self._db.write_batch() as batch:
                for tx_id in tx_ids:
                    batch.delete(pending_key(tx_id))

    def list_pending(self) -> list[tuple[bytes, bytes]]:
        """Return the kept (tx id, transaction bytes) of the mempool, for a restart."""
        start = len(b"p")
        return [(key[start:], value) for key, value in self._db.iterator(prefix=b"p")]

    def get_validator_set_bytes(self, height: int) -> bytes | None:
        """Return the encoded validator set that signs a height (up to the tip + 1)."""
        for _, value in self._db.iterator(
            start=b"v", stop=validator_set_key(height + 1), reverse=True
        ):
            return bytes(value)
        return None

    def list_validator_set_changes(self, below: int) -> list[tuple[int, bytes]]:
        """Return (height, encoded set) of every set that started signing after height 1
        and at most at `below`, in height order."""
        start = len(b"v")
        return [
            (int.from_bytes(key[start:], "big"), bytes(value))
            for key, value in self._db.iterator(
                start=validator_set_key(2), stop=validator_set_key(below + 1)
            )
        ]

    def scan_state(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Return committed state entries whose key starts with `prefix` (small tables)."""
        start = len(b"s")
        return [(key[start:], value) for key, value in self._db.iterator(prefix=b"s" + prefix)]

    def list_evidence(self, limit: int = 100) -> list[bytes]:
        """Return up to `limit` pieces of kept evidence, oldest heights first."""
        found: list[bytes] = []
        for _, value in self._db.iterator(prefix=b"e"):
            if len(found) >= limit:
                break
            found.append(value)
        return found

    def initialise(
        self, genesis_hash: bytes, genesis_writes: dict[bytes, bytes | None], tip: ChainTip
    ) -> None:
        """Write genesis state into an empty store, or check that the store is this chain's."""
        stored = self._db.get(_META_GENESIS)
        if stored is None:
            with self._db.write_batch(sync=True) as batch:
                for key, value in genesis_writes.items():
                    if value is not None:
                        batch.put(state_key(key), value)
                batch.put(_META_SCHEMA, pack(SCHEMA_VERSION))
                first_set = genesis_writes.get(KEY_VALIDATORS)
                if first_set is not None:
                    batch.put(validator_set_key(1), first_set)
                batch.put(_META_TIP, encode_tip(tip))
                batch.put(_META_GENESIS, genesis_hash)
            return
        if stored != genesis_hash:
            raise StoreError(
                "the data folder belongs to another chain (genesis hash "
                f"{stored.hex()}, expected {genesis_hash.hex()})"
            )
        if self._db.get(_META_SCHEMA) != pack(SCHEMA_VERSION):
            raise StoreError("the data folder uses an unknown schema version")
        self.check_tip()

    def get_tip(self) -> ChainTip:
        """Return the last committed block's tip."""
        data = self._db.get(_META_TIP, verify_checksums=True)
        if data is None:
            raise StoreError("the data folder has no tip: it was never initialised")
        try:
            return decode_tip(data)
        except DanangChainError as exc:
            raise StoreError(f"the stored tip is corrupt: {exc}") from None

    def check_tip(self) -> None:
        """Refuse a store whose tip does not match its last block and certificate."""
        tip = self.get_tip()
        if tip.height == 0:
            if self._db.get(block_key(1)) is not None:
                raise StoreError("the store has blocks beyond its tip at height 0")
            return
        block = self.get_block(tip.height)
        if block is None or block.hash != tip.block_hash:
            raise StoreError(f"the block at the tip (height {tip.height}) is missing or differs")
        if block.header.state_root != tip.state_root:
            raise StoreError(f"the state root at height {tip.height} differs from its block")
        if self.get_certificate(tip.height) is None:
            raise StoreError(f"the certificate of the tip (height {tip.height}) is missing")
        if self._db.get(block_key(tip.height + 1)) is not None:
            raise StoreError(f"the store has a block beyond its tip at height {tip.height}")

    def commit(self, result: BlockResult, certificate: CommitCertificate, tip: ChainTip) -> None:
        """Write a block, its certificate, indexes, state writes and the new tip atomically."""
        block = result.block
        height = block.height
        with self._db.write_batch(sync=True) as batch:
            batch.put(block_key(height), encode_block(block))
            batch.put(certificate_key(height), encode_certificate(certificate))
            for index, (tx, tx_id) in enumerate(
                zip(block.transactions, result.tx_ids, strict=True)
            ):
                batch.put(tx_key(tx_id), pack([height, index]))
                batch.delete(pending_key(tx_id))
                for address in _addresses_of_record(tx.body, tx.sender):
                    batch.put(address_record_key(address, height, index), tx_id)
            for key, value in result.writes.items():
                if value is None:
                    batch.delete(state_key(key))
                else:
                    batch.put(state_key(key), value)
            # Index the validator set by the first height it signs, for look-ups by height.
            signing_next = result.writes.get(KEY_VALIDATORS)
            if signing_next is not None:
                batch.put(validator_set_key(height + 1), signing_next)
            batch.put(_META_TIP, encode_tip(tip))

    def get_block_bytes(self, height: int) -> bytes | None:
        """Return the stored bytes of a block, or None."""
        value: bytes | None = self._db.get(block_key(height), verify_checksums=True)
        return value

    def get_block(self, height: int) -> Block | None:
        """Return the block at a height, or None; raise StoreError if it is corrupt."""
        data = self.get_block_bytes(height)
        if data is None:
            return None
        try:
            return decode_block(data)
        except DanangChainError as exc:
            raise StoreError(f"stored block {height} is corrupt: {exc}") from None

    def get_certificate(self, height: int) -> CommitCertificate | None:
        """Return the certificate of the block at a height, or None."""
        data = self._db.get(certificate_key(height), verify_checksums=True)
        if data is None:
            return None
        try:
            return decode_certificate(data)
        except DanangChainError as exc:
            raise StoreError(f"stored certificate {height} is corrupt: {exc}") from None

    def get_tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """Return (height, index) of a committed transaction, or None."""
        data = self._db.get(tx_key(tx_id), verify_checksums=True)
        if data is None:
            return None
        height, index = expect_list(unpack(data), 2, "tx location")
        return int(height), int(index)

    def get_record_ids_of(self, address: bytes, limit: int = 1000) -> list[bytes]:
        """Return ids of records made by or naming an address, oldest first."""
        prefix = b"a" + address
        ids: list[bytes] = []
        for _, value in self._db.iterator(prefix=prefix):
            ids.append(value)
            if len(ids) >= limit:
                break
        return ids

    # Read side for auditors and exports: raw bytes, checksums verified, nothing decoded.

    def _read(self, key: bytes) -> bytes | None:
        """Return a value with LevelDB's checksums verified; raise StoreCorruption."""
        try:
            value: bytes | None = self._db.get(key, verify_checksums=True, fill_cache=False)
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"LevelDB reports corruption: {_reason(exc)}") from None
        return value

    def _scan(self, table: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key without its table byte, value) of one table in key order."""
        try:
            for key, value in self._db.iterator(
                prefix=table, verify_checksums=True, fill_cache=False
            ):
                yield key[1:], value
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"LevelDB reports corruption: {_reason(exc)}") from None

    def read_tip(self) -> ChainTip:
        """Return the stored tip, checksums verified; raise StoreError if absent or corrupt."""
        data = self._read(_META_TIP)
        if data is None:
            raise StoreError("the data folder has no tip: it was never initialised")
        try:
            return decode_tip(data)
        except DanangChainError as exc:
            raise StoreError(f"the stored tip is corrupt: {exc}") from None

    def read_state(self, key: bytes) -> bytes | None:
        """Return a committed state value, checksums verified, or None."""
        return self._read(state_key(key))

    def get_genesis_hash(self) -> bytes | None:
        """Return the genesis hash the data folder was made for, or None."""
        return self._read(_META_GENESIS)

    def get_schema_version(self) -> bytes | None:
        """Return the stored schema version (its encoding), or None."""
        return self._read(_META_SCHEMA)

    def read_block_bytes(self, height: int) -> bytes | None:
        """Return a block's stored bytes, checksums verified, or None."""
        return self._read(block_key(height))

    def read_certificate_bytes(self, height: int) -> bytes | None:
        """Return the stored bytes of a block's own certificate, or None."""
        return self._read(certificate_key(height))

    def iter_block_bytes(self) -> Iterator[tuple[int | None, bytes]]:
        """Yield (height, bytes) of every stored block in height order (None: a malformed key)."""
        for key, value in self._scan(b"b"):
            yield (struct.unpack(">Q", key)[0] if len(key) == 8 else None), value

    def iter_state(self) -> Iterator[tuple[bytes, bytes]]:
        """Yield every committed state entry (state key, value) in key order."""
        return self._scan(b"s")

    def read_tx_location(self, tx_id: bytes) -> bytes | None:
        """Return the raw stored location entry of a transaction, or None."""
        return self._read(tx_key(tx_id))

    def read_address_record(self, address: bytes, height: int, index: int) -> bytes | None:
        """Return the record id filed under an address at (height, index), or None."""
        return self._read(address_record_key(address, height, index))

    def count_entries(self) -> dict[str, int]:
        """Return how many certificates and index entries are stored."""
        tables = {"certificates": b"c", "tx_index": b"t", "address_index": b"a"}
        return {name: sum(1 for _ in self._scan(table)) for name, table in tables.items()}


def encode_tx_location(height: int, index: int) -> bytes:
    """Return the stored form of a transaction's location."""
    return pack([height, index])


def get_indexed_addresses(tx: Transaction) -> tuple[bytes, ...]:
    """Return the addresses under which the store indexes a transaction (records only)."""
    return _addresses_of_record(tx.body, tx.sender)


def _addresses_of_record(body: object, sender: bytes) -> tuple[bytes, ...]:
    """Return the addresses a record transaction concerns (creator, counterparty)."""
    if not isinstance(body, RecordBody):
        return ()
    creator = compute_address(sender)
    if body.counterparty is None:
        return (creator,)
    return (creator, body.counterparty)
