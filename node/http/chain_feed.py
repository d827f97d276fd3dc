"""A feed of committed blocks for the events websocket, the metrics and the explorer.

The ledger's commit event hands each committed block to `on_commit` (already decoded,
with its transaction ids and certificate), which only queues it and wakes the feed's
task; the task publishes the queue in height order, off the commit path. Nothing polls.
A block not in the queue (committed before the feed was listening, or more than
FRESH_BLOCKS behind) is read through the ledger's read facade. Handlers that want an
up-to-date view call `catch_up()` themselves first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from danangchain.address import encode_address
from danangchain.block import Block, Header, compute_header_hash
from danangchain.read_access import is_private
from danangchain.rules import get_concerned_addresses, get_sender_address
from danangchain.state import StateView
from danangchain.transaction import (
    Transaction,
    compute_tx_id,
)
from danangchain.validators import CommitCertificate
from node.chain.events import BlockCommitted
from node.chain.ledger import NodeLedger
from node.http.views import render_transaction

log = logging.getLogger("danangchain.feed")

FAILED_PUBLISH_PAUSE_S = 5.0
RECENT_BLOCKS = 720
SEED_BLOCKS = 120
SUBSCRIBER_QUEUE = 12_000  # more than two full blocks of transaction events
EVENT_KINDS = frozenset({"block", "tx"})
MAX_SUBSCRIBERS = 64
FRESH_BLOCKS = 64  # committed blocks queued for publishing, decoded, before the store is read


@dataclass(frozen=True, slots=True)
class BlockSummary:
    """What the explorer and the live chart need of one committed block."""

    height: int
    block_hash: bytes
    time_ms: int
    proposer: bytes
    tx_count: int
    round: int | None
    signers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A block as the feed saw it commit: its summary, and the block when decoded."""

    summary: BlockSummary
    block: Block | None
    tx_ids: tuple[bytes, ...]
    seen_at: float


class BlockObserver(Protocol):
    """Told of every committed block, in height order (metrics)."""

    def wants_transactions(self) -> bool:
        """Tell whether the next block must be decoded with its transactions."""
        ...

    def on_block(self, committed: CommittedBlock) -> None:
        """Take note of one committed block."""
        ...


class Subscription:
    """One events client: a bounded queue of JSON texts, the kinds of events it wants and
    an optional address filter (which implies transactions only)."""

    def __init__(
        self,
        address: bytes | None,
        kinds: frozenset[str] = EVENT_KINDS,
        size: int = SUBSCRIBER_QUEUE,
    ) -> None:
        self.address = address
        self.kinds = kinds if address is None else frozenset({"tx"})
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.lagged = False

    def deliver(self, text: str) -> None:
        """Queue a message; a client that cannot keep up is marked lagged, not waited for."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.lagged = True


def summarise(header: Header, certificate: CommitCertificate | None) -> BlockSummary:
    """Return the summary of a block from its header and its own certificate."""
    return BlockSummary(
        height=header.height,
        block_hash=compute_header_hash(header),
        time_ms=header.time_ms,
        proposer=header.proposer,
        tx_count=header.tx_count,
        round=None if certificate is None else certificate.round,
        signers=() if certificate is None else tuple(key for key, _ in certificate.signatures),
    )


class ChainFeed:
    """Watch the tip; keep recent summaries; tell observers and subscribers of new blocks."""

    def __init__(
        self,
        ledger: NodeLedger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.wake = asyncio.Event()
        self.height = ledger.tip.height
        self.recent: deque[BlockSummary] = deque(maxlen=RECENT_BLOCKS)
        self.last_signed: dict[bytes, int] = {}
        self.observers: list[BlockObserver] = []
        self.subscribers: set[Subscription] = set()
        self.fresh: deque[tuple[Block, tuple[bytes, ...], CommitCertificate]] = deque(
            maxlen=FRESH_BLOCKS
        )

    def seed(self) -> None:
        """Load the summaries of the last blocks, for the chart and the validators' table."""
        for height in range(max(1, self.height - SEED_BLOCKS + 1), self.height + 1):
            header = self.ledger.reads.header(height)
            if header is not None:
                self._remember(summarise(header, self.ledger.reads.certificate(height)))

    async def run(self) -> None:
        """Publish committed blocks as they come, until cancelled; a failure to publish is
        logged and tried again later."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            try:
                self.catch_up()
            except Exception:
                log.exception("the chain feed could not read block %d", self.height + 1)
                await asyncio.sleep(FAILED_PUBLISH_PAUSE_S)
                self.wake.set()

    def on_commit(self, event: BlockCommitted) -> None:
        """Queue a block the ledger just committed and wake the publishing task."""
        self.fresh.append((event.result.block, event.result.tx_ids, event.certificate))
        self.wake.set()

    def catch_up(self) -> None:
        """Publish every block committed and not yet published, in height order."""
        while self.height < self.ledger.tip.height:
            self._publish(self.height + 1)
            self.height += 1

    def subscribe(self, address: bytes | None, kinds: frozenset[str] = EVENT_KINDS) -> Subscription:
        """Add an events client, who hears of blocks after the current tip; 503 if too many."""
        if len(self.subscribers) >= MAX_SUBSCRIBERS:
            raise web.HTTPServiceUnavailable(reason="too many event subscribers")
        self.catch_up()
        subscription = Subscription(address, kinds)
        self.subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Drop an events client."""
        self.subscribers.discard(subscription)

    def _publish(self, height: int) -> None:
        while self.fresh and self.fresh[0][0].height < height:
            self.fresh.popleft()
        if self.fresh and self.fresh[0][0].height == height:
            block, tx_ids, certificate = self.fresh.popleft()
            committed: CommittedBlock | None = self._describe(
                block.header, block, tx_ids, certificate
            )
        else:
            committed = self._read(height)
        if committed is None:
            return
        for observer in self.observers:
            observer.on_block(committed)
        if self.subscribers:
            previous = self.recent[-2] if len(self.recent) > 1 else None
            self._send(committed, previous)

    def _read(self, height: int) -> CommittedBlock | None:
        """Describe a committed block from the store, decoding it only if someone needs it."""
        reads = self.ledger.reads
        certificate = reads.certificate(height)
        wants_block = any("tx" in s.kinds for s in self.subscribers) or any(
            o.wants_transactions() for o in self.observers
        )
        block = reads.block(height) if wants_block else None
        header = block.header if block is not None else reads.header(height)
        if header is None:
            return None
        tx_ids = tuple(compute_tx_id(raw) for raw in block.tx_bytes) if block else ()
        return self._describe(header, block, tx_ids, certificate)

    def _describe(
        self,
        header: Header,
        block: Block | None,
        tx_ids: tuple[bytes, ...],
        certificate: CommitCertificate | None,
    ) -> CommittedBlock:
        """Summarise a block, remember it for the explorer, and wrap it for publishing."""
        summary = summarise(header, certificate)
        self._remember(summary)
        return CommittedBlock(summary, block, tx_ids, self.clock())

    def _remember(self, summary: BlockSummary) -> None:
        self.recent.append(summary)
        for key in summary.signers:
            self.last_signed[key] = summary.height

    def _send(self, committed: CommittedBlock, previous: BlockSummary | None) -> None:
        summary, block = committed.summary, committed.block
        block_audience = [s for s in self.subscribers if "block" in s.kinds]
        if block_audience:
            text = json.dumps(render_block_event(summary, previous, self.proposer_name(summary)))
            for subscription in block_audience:
                subscription.deliver(text)
        tx_audience = [s for s in self.subscribers if "tx" in s.kinds]
        if block is None or not tx_audience:
            return
        view = self.ledger.get_committed_view()
        for index, tx in enumerate(block.transactions):
            concerned = get_concerned_addresses(view, tx)
            audience = [s for s in tx_audience if s.address is None or s.address in concerned]
            if audience:
                event = render_tx_event(
                    summary, index, tx, committed.tx_ids[index], concerned, view
                )
                text = json.dumps(event)
                for subscription in audience:
                    subscription.deliver(text)

    def latest_summaries(self, count: int) -> list[BlockSummary]:
        """Return the summaries of the last `count` blocks, oldest first."""
        tip = self.ledger.tip.height
        known = {s.height: s for s in self.recent}
        summaries = []
        for height in range(max(1, tip - count + 1), tip + 1):
            summary = known.get(height)
            if summary is None:
                header = self.ledger.reads.header(height)
                if header is None:
                    continue
                summary = summarise(header, self.ledger.reads.certificate(height))
            summaries.append(summary)
        return summaries

    def proposer_name(self, summary: BlockSummary) -> str | None:
        """Return the name the validator set gives a block's proposer, if it is in the set."""
        for validator in self.ledger.get_validator_set().validators:
            if validator.public_key == summary.proposer:
                return validator.name
        return None


def render_block_event(
    summary: BlockSummary, previous: BlockSummary | None, proposer_name: str | None
) -> dict[str, Any]:
    """Render the event of a new block."""
    return {
        "type": "block",
        "height": summary.height,
        "hash": summary.block_hash.hex(),
        "time_ms": summary.time_ms,
        "proposer": summary.proposer.hex(),
        "proposer_name": proposer_name,
        "tx_count": summary.tx_count,
        "round": summary.round,
        "interval_ms": None if previous is None else summary.time_ms - previous.time_ms,
    }


def render_tx_event(
    summary: BlockSummary,
    index: int,
    tx: Transaction,
    tx_id: bytes,
    concerned: frozenset[bytes],
    view: StateView,
) -> dict[str, Any]:
    """Render the event of a committed transaction: a record's private fields withheld
    and, of the addresses it concerns, only its sender's (its counterparty is private)."""
    if is_private(tx):
        concerned = frozenset({get_sender_address(view, tx.sender)})
    return {
        "type": "tx",
        "height": summary.height,
        "index": index,
        "block_hash": summary.block_hash.hex(),
        "time_ms": summary.time_ms,
        "tx_id": tx_id.hex(),
        "addresses": sorted(encode_address(a) for a in concerned),
        "tx": render_transaction(tx, tx_id, view, public=True),
    }
