"""Signed reads on the client API: who is asking (the core checks the signature and the
key, this module adds the clock and the memory of nonces), whether they may read what
they ask for, and the access log entry of each read of another member's data.

The replay memory is in this process only, bounded, and keeps each nonce for twice the
window a signed time may be off: a request replayed within the window is refused, one
replayed later is stale. A node restarted inside the window forgets its nonces; a
replay then still needs to reach it within the same minute.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from danangchain.read_access import (
    READ_WINDOW_MS,
    Reader,
    ReadRefused,
    check_signed_read,
    decode_authorization,
    is_entitled,
)
from node.chain.access_log import AccessEntry
from node.chain.ledger import NodeLedger, wall_clock_ms
from node.chain.signatures import sodium_equation

MAX_REMEMBERED_NONCES = 200_000


class RequestRefused(Exception):
    """A read the API answers with an error: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ReplayMemory:
    """The nonces of the signed reads accepted in the last two windows, oldest first."""

    def __init__(self, capacity: int = MAX_REMEMBERED_NONCES) -> None:
        self._seen: OrderedDict[tuple[bytes, bytes], int] = OrderedDict()
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, public_key: bytes, nonce: bytes, now_ms: int) -> bool:
        """Remember a nonce of a key; False if it was seen in the last two windows."""
        while self._seen:
            oldest, seen_ms = next(iter(self._seen.items()))
            if now_ms - seen_ms <= 2 * READ_WINDOW_MS:
                break
            del self._seen[oldest]
        if (public_key, nonce) in self._seen:
            return False
        if len(self._seen) >= self._capacity:
            raise RequestRefused(503, "busy", "too many signed reads in the last minutes")
        self._seen[(public_key, nonce)] = now_ms
        return True


class ReadAccess:
    """Authenticate, authorise and log the reads of one node's client API, by the wall
    clock (signed times are a reader's clock; a ledger's block clock may be simulated)."""

    def __init__(self, ledger: NodeLedger, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.ledger = ledger
        self.clock = clock
        self.replays = ReplayMemory()

    def reader_of(self, request: web.Request) -> Reader | None:
        """Return who signed a request (None if unsigned); raise RequestRefused (401) for
        a signature that does not hold, a stale or replayed one, or a key of no member."""
        header = request.headers.get("Authorization")
        if header is None:
            return None
        ledger = self.ledger
        now_ms = self.clock()
        try:
            read = decode_authorization(header)
            reader = check_signed_read(
                ledger.get_committed_view(),
                ledger.chain_id,
                request.method,
                request.raw_path,
                read,
                now_ms,
                sodium_equation,
            )
        except ReadRefused as exc:
            raise self._refuse(exc.code, str(exc)) from None
        if not self.replays.remember(read.public_key, read.nonce, now_ms):
            raise self._refuse("replayed_request", "this signed request was already answered")
        return reader

    def require_reader(self, request: web.Request) -> Reader:
        """Return who signed a request; raise RequestRefused (401) if nobody did."""
        reader = self.reader_of(request)
        if reader is None:
            raise self.unsigned()
        return reader

    def unsigned(self) -> RequestRefused:
        """Return the refusal of an unsigned read of a member's data (401 auth_required)."""
        return self._refuse(
            "auth_required",
            "this is a member's data: sign the request with the member's key (the CLI: --from KEY)",
        )

    def check_entitled(self, reader: Reader, concerned: frozenset[bytes]) -> None:
        """Raise RequestRefused (403) unless the reader may read data about `concerned`."""
        if not is_entitled(reader, concerned):
            self._count("refused read: not_allowed")
            raise RequestRefused(
                403, "not_allowed", "only the members it concerns and auditors may read this"
            )

    def log_read(self, reader: Reader, owners: frozenset[bytes], route: str, target: str) -> None:
        """Log a read of the owners' data before it is answered."""
        entry = AccessEntry(reader.address, reader.role, route, target, self.clock())
        self.ledger.access_log.record(owners, entry)

    def log_export(self, reader: Reader, first: int, last: int) -> None:
        """Log a chain export of heights first..last: every member's data."""
        self.ledger.access_log.record_export(reader.address, reader.role, first, last, self.clock())

    def _refuse(self, code: str, message: str) -> RequestRefused:
        self._count(f"refused read: {code}")
        return RequestRefused(401, code, message)

    def _count(self, name: str) -> None:
        counters = self.ledger.counters
        counters[name] = counters.get(name, 0) + 1


READS = web.AppKey("read_access", ReadAccess)
