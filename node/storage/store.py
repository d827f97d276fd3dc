"""The node's store: blocks, certificates, indexes, state and the tip, over one ordered
key-value database (LevelDB in a node, its in-memory twin in unit tests).

Each committed block is one batch written with sync=True, so after a kill at any instant
the store holds either all of a block or none of it. The keys are in node/storage/schema.py.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence

from danangchain.block import Block, decode_block, encode_block
from danangchain.encoding import expect_list, pack, unpack
from danangchain.errors import DanangChainError
from danangchain.ledger import BlockResult, ChainTip
from danangchain.rules import get_document_key, get_record_index_addresses
from danangchain.state import KEY_VALIDATORS, PREFIX_RECORD, StateView, decode_record
from danangchain.transaction import EraseBody
from danangchain.validators import CommitCertificate, decode_certificate, encode_certificate
from node.storage import schema
from node.storage.backend import KeyValueStore, StoreCorruption, StoreError
from node.storage.leveldb import LevelDB
from node.storage.memory import MemoryKeyValueStore

# State values a store remembers (about 200 bytes each): emptied when full.
STATE_CACHE_ENTRIES = 20_000

__all__ = ["CommittedState", "Store", "StoreCorruption", "StoreError"]


class CommittedState:
    """The core's StateReader over the store's state table, with the values read last
    remembered (absent keys too): admission, building and validating a block read the
    same members and accounts again and again. Only Store.commit writes state, and it
    updates what is remembered after its batch is on disk."""

    __slots__ = ("_db", "_remembered")

    def __init__(self, db: KeyValueStore) -> None:
        self._db = db
        self._remembered: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        """Return the committed value at a state key, or None."""
        try:
            return self._remembered[key]
        except KeyError:
            pass
        value = self._db.get(schema.state_key(key))
        if len(self._remembered) >= STATE_CACHE_ENTRIES:
            self._remembered.clear()
        self._remembered[key] = value
        return value

    def written(self, writes: Mapping[bytes, bytes | None]) -> None:
        """Note committed writes: remembered keys take their new values."""
        remembered = self._remembered
        for key, value in writes.items():
            if key in remembered:
                remembered[key] = value

    def forget(self) -> None:
        """Forget every remembered value."""
        self._remembered.clear()


class Store:
    """Blocks, certificates, the transaction index, state and the tip, in one database."""

    def __init__(self, db: KeyValueStore) -> None:
        self._db = db
        self.state = CommittedState(db)

    @classmethod
    def open(cls, path: str) -> Store:
        """Open (or create) a node's LevelDB data folder."""
        return cls(LevelDB.open(path))

    @classmethod
    def open_existing(cls, path: str) -> Store:
        """Open a data folder that must already hold a store, creating nothing (audit, export)."""
        return cls(LevelDB.open_existing(path))

    @classmethod
    def in_memory(cls) -> Store:
        """Return an empty store that lives in memory only (unit tests, simulations)."""
        return cls(MemoryKeyValueStore())

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # Consensus: the signing record and evidence of equivocation

    def put_signing_record(self, record: bytes) -> None:
        """Sync what this validator last signed to disk, before the message leaves."""
        self._db.put(schema.META_SIGNING, record, sync=True)

    def get_signing_record(self) -> bytes | None:
        """Return the last signing record, or None."""
        return self._db.get(schema.META_SIGNING)

    def put_evidence(self, height: int, digest: bytes, evidence: bytes) -> None:
        """Keep two conflicting signed votes of one validator."""
        self._db.put(schema.evidence_key(height, digest), evidence)

    def list_evidence(self, limit: int = 100) -> list[bytes]:
        """Return up to `limit` pieces of kept evidence, oldest heights first."""
        found: list[bytes] = []
        for _, value in self._db.iterate(prefix=schema.TABLE_EVIDENCE):
            if len(found) >= limit:
                break
            found.append(value)
        return found

    # The access log: reads of a member's data served by this node (not consensus state)

    def put_access(
        self,
        owners: Sequence[bytes],
        time_ms: int,
        sequence: int,
        entry: bytes,
        replaces: tuple[int, int] | None = None,
    ) -> None:
        """Log one read under each owner whose data it served, synced before the answer;
        `replaces` (time, sequence) names the owners' entry it extends, deleted at once."""
        with self._db.write_batch(sync=True) as batch:
            for owner in owners:
                if replaces is not None:
                    batch.delete(schema.access_log_key(owner, *replaces))
                batch.put(schema.access_log_key(owner, time_ms, sequence), entry)

    def list_access(self, owner: bytes, limit: int) -> list[bytes]:
        """Return the last `limit` access log entries of an owner, newest first."""
        found: list[bytes] = []
        for _, value in self._db.iterate(prefix=schema.access_log_prefix(owner), reverse=True):
            if len(found) >= limit:
                break
            found.append(value)
        return found

    # The mempool's copy on disk

    def put_pending(self, admitted: Sequence[tuple[bytes, bytes]]) -> None:
        """Keep admitted transactions (id, bytes) until their block commits, in one write.
        Not synced: the write is in the OS when this returns, so a killed node keeps them
        (a power cut may not)."""
        with self._db.write_batch() as batch:
            for tx_id, tx_bytes in admitted:
                batch.put(schema.pending_key(tx_id), tx_bytes)

    def forget_pending(self, tx_ids: Sequence[bytes]) -> None:
        """Drop kept transactions that will never commit (refused after a block), and the
        sealed content that came with them."""
        if tx_ids:
            with self._db.write_batch() as batch:
                for tx_id in tx_ids:
                    batch.delete(schema.pending_key(tx_id))
                    if self._db.get(schema.tx_key(tx_id)) is None:  # never a committed one's
                        batch.delete(schema.sealed_key(tx_id))

    def list_pending(self) -> list[tuple[bytes, bytes]]:
        """Return the kept (tx id, transaction bytes) of the mempool, for a restart."""
        start = len(schema.TABLE_PENDING)
        return [(key[start:], value) for key, value in self._db.iterate(prefix=b"p")]

    # Validator sets and state

    def get_validator_set_bytes(self, height: int) -> bytes | None:
        """Return the encoded validator set that signs a height (up to the tip + 1)."""
        for _, value in self._db.iterate(
            start=schema.TABLE_VALIDATOR_SET,
            stop=schema.validator_set_key(height + 1),
            reverse=True,
        ):
            return bytes(value)
        return None

    def list_validator_set_changes(self, below: int) -> list[tuple[int, bytes]]:
        """Return (height, encoded set) of every set that started signing after height 1
        and at most at `below`, in height order."""
        start = len(schema.TABLE_VALIDATOR_SET)
        return [
            (int.from_bytes(key[start:], "big"), bytes(value))
            for key, value in self._db.iterate(
                start=schema.validator_set_key(2), stop=schema.validator_set_key(below + 1)
            )
        ]

    def scan_state(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Return committed state entries whose key starts with `prefix` (small tables)."""
        start = len(schema.TABLE_STATE)
        return [(key[start:], value) for key, value in self._db.iterate(prefix=b"s" + prefix)]

    # Genesis, the tip and each block's commit

    def initialise(
        self, genesis_hash: bytes, genesis_writes: dict[bytes, bytes | None], tip: ChainTip
    ) -> None:
        """Write genesis state into an empty store, or check that the store is this chain's."""
        stored = self._db.get(schema.META_GENESIS)
        if stored is None:
            with self._db.write_batch(sync=True) as batch:
                for key, value in genesis_writes.items():
                    if value is not None:
                        batch.put(schema.state_key(key), value)
                batch.put(schema.META_SCHEMA, pack(schema.SCHEMA_VERSION))
                first_set = genesis_writes.get(KEY_VALIDATORS)
                if first_set is not None:
                    batch.put(schema.validator_set_key(1), first_set)
                batch.put(schema.META_TIP, schema.encode_tip(tip))
                batch.put(schema.META_GENESIS, genesis_hash)
                batch.put(schema.META_DOCUMENT_INDEX, b"")
            self.state.forget()
            return
        if stored != genesis_hash:
            raise StoreError(
                "the data folder belongs to another chain (genesis hash "
                f"{stored.hex()}, expected {genesis_hash.hex()})"
            )
        if self._db.get(schema.META_SCHEMA) != pack(schema.SCHEMA_VERSION):
            raise StoreError("the data folder uses an unknown schema version")
        self.check_tip()
        if self._db.get(schema.META_DOCUMENT_INDEX) is None:
            self._build_document_index()

    def _build_document_index(self) -> None:
        """Index the records of a store made before the document index, in one write: for
        each (creator, document), its standing record, else its first."""
        chosen: dict[bytes, tuple[bool, int, bytes]] = {}
        for key, value in self.scan_state(PREFIX_RECORD):
            record = decode_record(value)
            if record.reference is not None or record.doc_hash is None:
                continue
            rank = (record.cancelled_height is not None, record.height, key[len(PREFIX_RECORD) :])
            document = record.creator + record.doc_hash + record.category.encode()
            if document not in chosen or rank < chosen[document]:
                chosen[document] = rank
        with self._db.write_batch(sync=True) as batch:
            for document, (_, _, record_id) in chosen.items():
                batch.put(schema.document_key(document), record_id)
            batch.put(schema.META_DOCUMENT_INDEX, b"")

    def find_document(self, document: bytes) -> bytes | None:
        """Return the id of the record indexed under (creator address, digest, category)."""
        return self._db.get(schema.document_key(document))

    def get_tip(self) -> ChainTip:
        """Return the last committed block's tip."""
        return self.read_tip()

    def check_tip(self) -> None:
        """Refuse a store whose tip does not match its last block and certificate."""
        tip = self.get_tip()
        if tip.height == 0:
            if self._db.get(schema.block_key(1)) is not None:
                raise StoreError("the store has blocks beyond its tip at height 0")
            return
        block = self.get_block(tip.height)
        if block is None or block.hash != tip.block_hash:
            raise StoreError(f"the block at the tip (height {tip.height}) is missing or differs")
        if block.header.state_root != tip.state_root:
            raise StoreError(f"the state root at height {tip.height} differs from its block")
        if self.get_certificate(tip.height) is None:
            raise StoreError(f"the certificate of the tip (height {tip.height}) is missing")
        if self._db.get(schema.block_key(tip.height + 1)) is not None:
            raise StoreError(f"the store has a block beyond its tip at height {tip.height}")

    def commit(
        self,
        result: BlockResult,
        certificate: CommitCertificate,
        tip: ChainTip,
        kept: Container[bytes] | None = None,
    ) -> None:
        """Write a block, its certificate, indexes, state writes and the new tip atomically;
        drop the kept copies of its transactions (`kept`: the ids that have one, if known;
        deleting a key never written would still leave a tombstone to compact)."""
        block = result.block
        height = block.height
        after = StateView(self.state, result.writes)
        documents: set[bytes] = set()
        erased: list[bytes] = []
        with self._db.write_batch(sync=True) as batch:
            batch.put(schema.block_key(height), encode_block(block))
            batch.put(schema.certificate_key(height), encode_certificate(certificate))
            for index, (tx, tx_id) in enumerate(
                zip(block.transactions, result.tx_ids, strict=True)
            ):
                batch.put(schema.tx_key(tx_id), schema.encode_tx_location(height, index))
                if kept is None or tx_id in kept:
                    batch.delete(schema.pending_key(tx_id))
                if isinstance(tx.body, EraseBody):
                    batch.delete(schema.sealed_key(tx.body.record_id))
                    erased.append(tx.body.record_id)
                for address in get_record_index_addresses(after, tx):
                    batch.put(schema.address_record_key(address, height, index), tx_id)
                document = get_document_key(after, tx)
                if document is not None and document not in documents:
                    documents.add(document)
                    if self._is_free(document, after):
                        batch.put(schema.document_key(document), tx_id)
            for key, value in result.writes.items():
                if value is None:
                    batch.delete(schema.state_key(key))
                else:
                    batch.put(schema.state_key(key), value)
            # Index the validator set by the first height it signs, for look-ups by height.
            signing_next = result.writes.get(KEY_VALIDATORS)
            if signing_next is not None:
                batch.put(schema.validator_set_key(height + 1), signing_next)
            batch.put(schema.META_TIP, schema.encode_tip(tip))
        self.state.written(result.writes)
        for record_id in erased:
            key = schema.sealed_key(record_id)
            self._db.compact(key, key + b"\x00")

    # Sealed records' encrypted content, beside the chain

    def put_sealed(self, contents: Sequence[tuple[bytes, bytes]]) -> None:
        """Keep sealed records' encrypted content (record id, envelope) in one write, not
        synced, like the pending transactions they come with."""
        with self._db.write_batch() as batch:
            for tx_id, envelope in contents:
                batch.put(schema.sealed_key(tx_id), envelope)

    def get_sealed(self, tx_id: bytes) -> bytes | None:
        """Return a sealed record's encrypted content, or None (erased, or never here)."""
        return self._db.get(schema.sealed_key(tx_id))

    def _is_free(self, document: bytes, after: StateView) -> bool:
        """Tell whether a document's index entry is absent or names a cancelled record (a
        block from another node may hold a duplicate: the first standing record keeps it)."""
        earlier = self.find_document(document)
        if earlier is None:
            return True
        record = after.get_record(earlier)
        return record is None or record.cancelled_height is not None

    # Reads of committed blocks

    def get_block_bytes(self, height: int) -> bytes | None:
        """Return the stored bytes of a block, or None."""
        return self._db.get(schema.block_key(height))

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
        data = self._db.get(schema.certificate_key(height))
        if data is None:
            return None
        try:
            return decode_certificate(data)
        except DanangChainError as exc:
            raise StoreError(f"stored certificate {height} is corrupt: {exc}") from None

    def get_tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """Return (height, index) of a committed transaction, or None."""
        data = self._db.get(schema.tx_key(tx_id))
        if data is None:
            return None
        try:
            height, index = expect_list(unpack(data), 2, "tx location")
            return int(height), int(index)
        except (DanangChainError, TypeError, ValueError) as exc:
            raise StoreError(f"stored location of {tx_id.hex()} is corrupt: {exc}") from None

    def get_record_ids_of(self, address: bytes, limit: int = 1000) -> list[bytes]:
        """Return ids of records made by or naming an address, oldest first."""
        ids: list[bytes] = []
        for _, value in self._db.iterate(prefix=schema.address_records_prefix(address)):
            ids.append(value)
            if len(ids) >= limit:
                break
        return ids

    # Read side for auditors and exports: raw bytes, checksums verified, nothing decoded.

    def _read(self, key: bytes) -> bytes | None:
        """Return a value with checksums verified, out of the cache; raise StoreCorruption."""
        return self._db.get(key, verify=True, fill_cache=False)

    def _scan(self, table: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key without its table byte, value) of one table in key order."""
        for key, value in self._db.iterate(prefix=table, verify=True, fill_cache=False):
            yield key[1:], value

    def read_tip(self) -> ChainTip:
        """Return the stored tip, checksums verified; raise StoreError if absent or corrupt."""
        data = self._read(schema.META_TIP)
        if data is None:
            raise StoreError("the data folder has no tip: it was never initialised")
        try:
            return schema.decode_tip(data)
        except DanangChainError as exc:
            raise StoreError(f"the stored tip is corrupt: {exc}") from None

    def read_state(self, key: bytes) -> bytes | None:
        """Return a committed state value, checksums verified, or None."""
        return self._read(schema.state_key(key))

    def get_genesis_hash(self) -> bytes | None:
        """Return the genesis hash the data folder was made for, or None."""
        return self._read(schema.META_GENESIS)

    def get_schema_version(self) -> bytes | None:
        """Return the stored schema version (its encoding), or None."""
        return self._read(schema.META_SCHEMA)

    def read_block_bytes(self, height: int) -> bytes | None:
        """Return a block's stored bytes, checksums verified, or None."""
        return self._read(schema.block_key(height))

    def read_certificate_bytes(self, height: int) -> bytes | None:
        """Return the stored bytes of a block's own certificate, or None."""
        return self._read(schema.certificate_key(height))

    def iter_block_bytes(self) -> Iterator[tuple[int | None, bytes]]:
        """Yield (height, bytes) of every stored block in height order (None: a malformed key)."""
        for key, value in self._scan(schema.TABLE_BLOCK):
            yield schema.decode_height(key), value

    def iter_state(self) -> Iterator[tuple[bytes, bytes]]:
        """Yield every committed state entry (state key, value) in key order."""
        return self._scan(schema.TABLE_STATE)

    def read_tx_location(self, tx_id: bytes) -> bytes | None:
        """Return the raw stored location entry of a transaction, or None."""
        return self._read(schema.tx_key(tx_id))

    def read_address_record(self, address: bytes, height: int, index: int) -> bytes | None:
        """Return the record id filed under an address at (height, index), or None."""
        return self._read(schema.address_record_key(address, height, index))

    def count_entries(self) -> dict[str, int]:
        """Return how many certificates and index entries are stored."""
        tables = {
            "certificates": schema.TABLE_CERTIFICATE,
            "tx_index": schema.TABLE_TX,
            "address_index": schema.TABLE_ADDRESS_RECORD,
        }
        return {name: sum(1 for _ in self._scan(table)) for name, table in tables.items()}
