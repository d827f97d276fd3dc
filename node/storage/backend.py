"""What the store needs of a key-value database: LevelDB in a node, a dict in unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol


class StoreError(Exception):
    """The data folder cannot be used: corrupt, or made for another chain."""


class StoreCorruption(StoreError):
    """The database found a checksum or format fault while reading the data folder."""


class WriteBatch(Protocol):
    """Writes that land together or not at all."""

    def put(self, key: bytes, value: bytes) -> None:
        """Set a key."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove a key."""
        ...


class KeyValueStore(Protocol):
    """An ordered byte-key database with atomic batches; raises StoreCorruption on a fault.

    `verify` asks for checksums to be checked on the read; `fill_cache=False` keeps a
    long scan (an audit, an export) out of the read cache.
    """

    def get(self, key: bytes, verify: bool = True, fill_cache: bool = True) -> bytes | None:
        """Return a key's value, or None."""
        ...

    def put(self, key: bytes, value: bytes, sync: bool = False) -> None:
        """Set one key; with sync, on disk before returning."""
        ...

    def write_batch(self, sync: bool = False) -> AbstractContextManager[WriteBatch]:
        """Return a batch written atomically when its `with` block ends."""
        ...

    def iterate(
        self,
        prefix: bytes | None = None,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
        verify: bool = False,
        fill_cache: bool = True,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) in key order: under a prefix, or in [start, stop)."""
        ...

    def compact(self, start: bytes, stop: bytes) -> None:
        """Rewrite the database's files holding keys in [start, stop), so deleted values
        leave the disk (an erasure) rather than waiting for a compaction."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """Return the first key after every key starting with `prefix` (None: no such key)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
