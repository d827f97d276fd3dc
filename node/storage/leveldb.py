"""LevelDB through plyvel: the only module of the project that imports it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import plyvel

from node.storage.backend import StoreCorruption, StoreError, WriteBatch, prefix_upper_bound


def _reason(exc: Exception) -> str:
    """Return LevelDB's message as text (plyvel hands it over as bytes)."""
    message = exc.args[0] if exc.args else exc
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


# Each table file carries a Bloom filter of its keys (about 1 % false positives at 10 bits
# a key), so a look-up of an absent key (a new transaction's id, a document not recorded
# yet) reads no data block. Tables written without one, by older versions, still read.
BLOOM_FILTER_BITS = 10
# Tables are written uncompressed. What a node stores is mostly hashes, keys and
# signatures, which Snappy cannot shrink: compacted, a 20,000-record chain takes 8.2-8.7
# MB without it against 7.2-7.4 MB with it. But LevelDB's background compactions spent
# 1.1-1.3 s of CPU per node compressing during a 40,000-transaction bench, 0.3 s without:
# a fifth of each node's CPU. Tables written compressed by older versions still read (each
# block says how it is stored) and are rewritten uncompressed as they are compacted.
COMPRESSION = None


class LevelDB:
    """One LevelDB folder, with plyvel's faults turned into StoreError."""

    def __init__(self, db: plyvel.DB) -> None:
        self._db = db

    @classmethod
    def open(cls, path: str) -> LevelDB:
        """Open a node's data folder, creating it if needed."""
        try:
            return cls(
                plyvel.DB(
                    path,
                    create_if_missing=True,
                    paranoid_checks=True,
                    bloom_filter_bits=BLOOM_FILTER_BITS,
                    compression=COMPRESSION,
                )
            )
        except plyvel.IOError as exc:
            raise StoreError(_describe_open_failure(path, exc)) from None
        except plyvel.CorruptionError as exc:
            raise StoreError(f"the data folder {path} is corrupt: {_reason(exc)}") from None

    @classmethod
    def open_existing(cls, path: str) -> LevelDB:
        """Open a data folder that must already hold a database, creating nothing.

        LevelDB lets one process open a folder at a time, so this fails while its node runs.
        """
        if not (Path(path) / "CURRENT").is_file():
            raise StoreError(f"no node data in {path}: is it a node's data folder?")
        try:
            # No block cache: a block read once without its checksum verified must not be
            # served from memory to a later read that asks for verification.
            return cls(
                plyvel.DB(
                    path,
                    create_if_missing=False,
                    paranoid_checks=True,
                    lru_cache_size=0,
                    bloom_filter_bits=BLOOM_FILTER_BITS,
                    compression=COMPRESSION,
                )
            )
        except plyvel.IOError as exc:
            raise StoreError(_describe_open_failure(path, exc)) from None
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"the data folder {path} is corrupt: {_reason(exc)}") from None
        except plyvel.Error as exc:
            raise StoreError(f"cannot open the data folder {path}: {_reason(exc)}") from None

    def get(self, key: bytes, verify: bool = True, fill_cache: bool = True) -> bytes | None:
        """Return a key's value, or None."""
        try:
            value: bytes | None = self._db.get(key, verify_checksums=verify, fill_cache=fill_cache)
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"LevelDB reports corruption: {_reason(exc)}") from None
        return value

    def put(self, key: bytes, value: bytes, sync: bool = False) -> None:
        """Set one key."""
        self._db.put(key, value, sync=sync)

    def write_batch(self, sync: bool = False) -> AbstractContextManager[WriteBatch]:
        """Return a batch written atomically when its `with` block ends."""
        return self._batch(sync)

    @contextmanager
    def _batch(self, sync: bool) -> Iterator[WriteBatch]:
        # transaction=True: a batch whose `with` block raises is discarded. plyvel's
        # default writes what was added so far, which would leave half a block on disk.
        with self._db.write_batch(sync=sync, transaction=True) as batch:
            yield batch

    def iterate(
        self,
        prefix: bytes | None = None,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
        verify: bool = False,
        fill_cache: bool = True,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) in key order (or reversed)."""
        try:
            if reverse:
                yield from self._reverse(prefix, start, stop, verify, fill_cache)
                return
            bounds = {"prefix": prefix} if prefix is not None else {"start": start, "stop": stop}
            yield from self._db.iterator(verify_checksums=verify, fill_cache=fill_cache, **bounds)
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"LevelDB reports corruption: {_reason(exc)}") from None

    def _reverse(
        self,
        prefix: bytes | None,
        start: bytes | None,
        stop: bytes | None,
        verify: bool,
        fill_cache: bool,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate backwards from `stop`, ending below `start` here: plyvel 1.5's reverse
        iterator skips a range's only key when that key equals its start (or prefix)."""
        if prefix is not None:
            start, stop = prefix, prefix_upper_bound(prefix)
        for key, value in self._db.iterator(
            stop=stop, reverse=True, verify_checksums=verify, fill_cache=fill_cache
        ):
            if start is not None and key < start:
                return
            yield key, value

    def compact(self, start: bytes, stop: bytes) -> None:
        """Compact the key range: LevelDB drops deleted values from its table files."""
        self._db.compact_range(start=start, stop=stop)

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _describe_open_failure(path: str, exc: Exception) -> str:
    if "lock" in _reason(exc).lower():
        return (
            f"a node is already running on this home: the data folder {path} is in use; "
            "stop that node first (LevelDB lets one process open it at a time)"
        )
    return f"cannot open the data folder {path}: {_reason(exc)}"
