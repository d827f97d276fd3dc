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


class AccessLog:
    """Log reads of members' data and list a member's."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sequence = itertools.count()

    def record(self, owners: frozenset[bytes] | None, entry: AccessEntry) -> None:
        """Log a read under each owner it concerns that is not the reader itself
        (None: every member's data, as a chain export reads)."""
        targets = [EVERY_MEMBER] if owners is None else sorted(owners - {entry.reader})
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
