"""`GET /txs/{id}?wait=S`: answer when a pending transaction is final, one request instead
of polls.

Every commit wakes the waiting requests, which look at the transaction's status again: a
transaction becomes committed, or rejected (dropped as no longer valid), only when a block
commits, so nothing is missed between two looks and nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from node.chain.events import BlockCommitted
from node.chain.ledger import NodeLedger
from node.chain.reads import TxStatus

MAX_WAIT_S = 60.0


class CommitTicks:
    """An event that fires at every commit: waiters take the current one and await it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.waiting = 0  # requests waiting now (for tests and, later, a gauge)

    def on_commit(self, event: BlockCommitted) -> None:
        """Wake everyone waiting for the next commit."""
        self._event.set()
        self._event = asyncio.Event()

    async def next_commit(self, timeout_s: float) -> None:
        """Return at the next commit, or when the timeout passes."""
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout_s)
        finally:
            self.waiting -= 1


TICKS = web.AppKey("commit_ticks", CommitTicks)


async def wait_until_final(
    ledger: NodeLedger, ticks: CommitTicks, tx_id: bytes, seconds: float
) -> TxStatus:
    """Return a transaction's status once it is no longer pending, or when `seconds` pass.
    Only a pending transaction is waited for: an unknown id answers at once, so nobody can
    hold requests open on ids this node has never seen."""
    deadline = time.monotonic() + seconds
    while True:
        status = ledger.reads.tx_status(tx_id)
        remaining = deadline - time.monotonic()
        if status.state != "pending" or remaining <= 0:
            return status
        await ticks.next_commit(remaining)


async def follow_commits(app: web.Application, ledger: NodeLedger) -> AsyncIterator[None]:
    """Keep the app's commit ticks subscribed to the ledger while the app runs."""
    ticks = app[TICKS]
    unsubscribe = ledger.committed.subscribe(ticks.on_commit)
    yield
    unsubscribe()
