"""Peer traffic over HTTP: consensus messages, transaction gossip and block sync.

Every body is canonical msgpack. Consensus messages carry their validator's signature
and are checked by the consensus machine before use; gossiped transactions go through
the same admission as the client API; synced blocks are checked against certificates.
Queues and bodies are bounded, so a peer cannot exhaust a node.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from danangchain.encoding import pack, unpack
from danangchain.errors import DanangChainError

log = logging.getLogger("danangchain.p2p")

MAX_P2P_BODY = 32 * 1024 * 1024
MAX_BATCH = 256
MAX_QUEUE = 20_000
MAX_SYNC_BLOCKS = 64
SEND_TIMEOUT_S = 5.0


class PeerLink:
    """One peer: bounded outgoing queues, sent in batches by a background task."""

    def __init__(self, url: str, session: aiohttp.ClientSession,
                 counters: dict[str, int]) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.counters = counters
        self.messages: deque[bytes] = deque(maxlen=MAX_QUEUE)
        self.txs: deque[bytes] = deque(maxlen=MAX_QUEUE)
        self.wake = asyncio.Event()
        self.connected = False

    def send_message(self, encoded: bytes) -> None:
        """Queue a consensus message (the oldest goes if the queue is full)."""
        self.messages.append(encoded)
        self.wake.set()

    def send_tx(self, tx_bytes: bytes) -> None:
        """Queue a transaction for gossip."""
        self.txs.append(tx_bytes)
        self.wake.set()

    async def run(self) -> None:
        """Send queued batches until cancelled; on failure back off and drop the batch."""
        backoff = 0.1
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.messages or self.txs:
                ok = await self._flush("/p2p/consensus", self.messages)
                ok = await self._flush("/p2p/txs", self.txs) and ok
                if not ok:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                else:
                    backoff = 0.1

    async def _flush(self, path: str, queue: deque[bytes]) -> bool:
        if not queue:
            return True
        batch = [queue.popleft() for _ in range(min(MAX_BATCH, len(queue)))]
        try:
            async with self.session.post(
                self.url + path, data=pack(batch),
                headers={"Content-Type": "application/msgpack"},
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
            ) as response:
                await response.read()
                self.connected = response.status < 400
                return self.connected
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.connected = False
            self.counters["peer send failures"] = self.counters.get("peer send failures", 0) + 1
            if queue is self.txs:
                queue.extendleft(reversed(batch))  # transactions wait for the peer's return
            return False

    async def get(self, path: str) -> Any:
        """GET a msgpack document from the peer, or None if it cannot be had."""
        try:
            async with self.session.get(
                self.url + path, timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S)
            ) as response:
                if response.status != 200:
                    return None
                body = await response.read()
            self.connected = True
            return unpack(body, max_size=MAX_P2P_BODY)
        except (TimeoutError, aiohttp.ClientError, OSError, DanangChainError):
            self.connected = False
            return None


async def _read_batch(request: web.Request) -> list[bytes]:
    """Read a msgpack array of byte strings, or raise a 400."""
    try:
        batch = unpack(await request.read(), max_size=MAX_P2P_BODY)
    except DanangChainError as exc:
        raise web.HTTPBadRequest(text=f"bad batch: {exc}") from None
    if not isinstance(batch, list) or len(batch) > MAX_BATCH or not all(
        isinstance(item, bytes) for item in batch
    ):
        raise web.HTTPBadRequest(text=f"expected an array of at most {MAX_BATCH} byte strings")
    return batch


class PeerServer:
    """The routes peers call; handlers hand work to the callbacks given."""

    def __init__(self, on_messages: Callable[[list[bytes]], None],
                 on_txs: Callable[[list[bytes]], None],
                 get_height: Callable[[], int],
                 get_certified_block: Callable[[int], tuple[bytes, bytes] | None]) -> None:
        self.on_messages = on_messages
        self.on_txs = on_txs
        self.get_height = get_height
        self.get_certified_block = get_certified_block

    def create_app(self) -> web.Application:
        """Build the peer-facing application."""
        app = web.Application(client_max_size=MAX_P2P_BODY)
        app.router.add_post("/p2p/consensus", self.post_consensus)
        app.router.add_post("/p2p/txs", self.post_txs)
        app.router.add_get("/p2p/status", self.get_status)
        app.router.add_get("/p2p/blocks/{start}", self.get_blocks)
        return app

    async def post_consensus(self, request: web.Request) -> web.Response:
        self.on_messages(await _read_batch(request))
        return web.Response(status=204)

    async def post_txs(self, request: web.Request) -> web.Response:
        self.on_txs(await _read_batch(request))
        return web.Response(status=204)

    async def get_status(self, request: web.Request) -> web.Response:
        return web.Response(body=pack({"height": self.get_height()}),
                            content_type="application/msgpack")

    async def get_blocks(self, request: web.Request) -> web.Response:
        """Return up to MAX_SYNC_BLOCKS [block, certificate] pairs from a height on."""
        text = request.match_info["start"]
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise web.HTTPBadRequest(text="start must be a height")
        pairs = []
        for height in range(int(text), int(text) + MAX_SYNC_BLOCKS):
            pair = self.get_certified_block(height)
            if pair is None:
                break
            pairs.append(list(pair))
        return web.Response(body=pack(pairs), content_type="application/msgpack")
