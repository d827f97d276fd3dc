"""The access log: every signed read of a member's data by another member, as this node
served it. It is the node's own journal, not consensus state: each node logs the reads it
answered, durably (synced before the answer leaves), and a member reads its own."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from danangchain.encoding import expect_bytes, expect_int, expect_list, expect_str, pack, unpack
from danangchain.errors import DanangChainError
from node.storage.schema import EVERY_MEMBER
from node.storage.store import Store, StoreError

MAX_ACCESS_LIST = 1000


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One read: who read (address and role), which route and what, and when."""

    reader: bytes
    role: str
    route: str
    target: str
    time_ms: int


def encode_access_entry(entry: AccessEntry) -> bytes:
    """Return the stored form of an access log entry."""
    return pack([entry.reader, entry.role, entry.route, entry.target, entry.time_ms])


def decode_access_entry(data: bytes) -> AccessEntry:
    """Decode a stored access log entry; raise DecodeError if malformed."""
    reader, role, route, target, time_ms = expect_list(unpack(data), 5, "access entry")
    return AccessEntry(
        expect_bytes(reader, "reader"),
        expect_str(role, "role", 64),
        expect_str(route, "route", 64),
        expect_str(target, "target", 256),
        expect_int(time_ms, "time"),
    )


@dataclass(frozen=True, slots=True)
class _Export:
    """The last chain export logged for a reader: where its entry is, what it covered."""

    time_ms: int
    sequence: int
    first: int
    last: int


class AccessLog:
    """Log reads of members' data and list a member's."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sequence = itertools.count()
        self._exports: dict[bytes, _Export] = {}

    def record_export(self, reader: bytes, role: str, first: int, last: int, now_ms: int) -> None:
        """Log a chain export of heights first..last under every member; a follower's next
        export (from the height after the last one logged) extends that entry instead of
        adding one per poll, so a witness leaves one line, not one per block."""
        previous = self._exports.get(reader)
        replaces = None
        if previous is not None and previous.last + 1 == first:
            first, replaces = previous.first, (previous.time_ms, previous.sequence)
        sequence = next(self._sequence)
        entry = AccessEntry(reader, role, "chain_export", f"{first}-{last}", now_ms)
        self._store.put_access(
            [EVERY_MEMBER], now_ms, sequence, encode_access_entry(entry), replaces
        )
        self._exports[reader] = _Export(now_ms, sequence, first, last)

    def record(self, owners: frozenset[bytes], entry: AccessEntry) -> None:
        """Log a read under each owner it concerns that is not the reader itself."""
        targets = sorted(owners - {entry.reader})
        if targets:
            sequence = next(self._sequence)
            self._store.put_access(targets, entry.time_ms, sequence, encode_access_entry(entry))

    def entries_of(self, owner: bytes, limit: int = MAX_ACCESS_LIST) -> list[AccessEntry]:
        """Return the reads of an owner's data, its own and every member's, newest first."""
        stored = self._store.list_access(owner, limit) + self._store.list_access(
            EVERY_MEMBER, limit
        )
        try:
            entries = [decode_access_entry(data) for data in stored]
        except DanangChainError as exc:
            raise StoreError(f"a stored access log entry is corrupt: {exc}") from None
        entries.sort(key=lambda entry: entry.time_ms, reverse=True)
        return entries[:limit]
