"""The store's in-memory twin: the same ordered keys and atomic batches, in a dict."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from node.storage.backend import WriteBatch, prefix_upper_bound


class _Batch:
    def __init__(self) -> None:
        self.writes: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = bytes(value)

    def delete(self, key: bytes) -> None:
        self.writes[key] = None


class MemoryKeyValueStore:
    """A sorted dict behind the KeyValueStore protocol, for unit tests and simulations."""

    def __init__(self) -> None:
        self._values: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def get(self, key: bytes, verify: bool = True, fill_cache: bool = True) -> bytes | None:
        """Return a key's value, or None."""
        return self._values.get(key)

    def put(self, key: bytes, value: bytes, sync: bool = False) -> None:
        """Set one key."""
        self._apply({key: bytes(value)})

    def write_batch(self, sync: bool = False) -> AbstractContextManager[WriteBatch]:
        """Return a batch applied when its `with` block ends without an error."""
        return self._batch()

    @contextmanager
    def _batch(self) -> Iterator[WriteBatch]:
        batch = _Batch()
        yield batch
        self._apply(batch.writes)

    def _apply(self, writes: dict[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            present = key in self._values
            if value is None:
                if present:
                    del self._values[key]
                    del self._keys[bisect.bisect_left(self._keys, key)]
                continue
            if not present:
                bisect.insort(self._keys, key)
            self._values[key] = value

    def iterate(
        self,
        prefix: bytes | None = None,
        start: bytes | None = None,
        stop: bytes | None = None,
        reverse: bool = False,
        verify: bool = False,
        fill_cache: bool = True,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) in key order (or reversed), over a snapshot of the keys."""
        if prefix is not None:
            start, stop = prefix, prefix_upper_bound(prefix)
        low = 0 if start is None else bisect.bisect_left(self._keys, start)
        high = len(self._keys) if stop is None else bisect.bisect_left(self._keys, stop)
        keys = self._keys[low:high]
        for key in reversed(keys) if reverse else keys:
            value = self._values.get(key)
            if value is not None:
                yield key, value

    def compact(self, start: bytes, stop: bytes) -> None:
        """Nothing to rewrite: a deleted key is gone from memory at once."""

    def close(self) -> None:
        """Nothing to release."""
