"""Liveness and readiness, as Besu and CometBFT operators know them.

`/health` answers 200 while the process serves requests. `/readiness` answers 200 only
when the node is within `max_blocks_behind` of the highest peer it can reach and at
least `min_peers` peers answer; otherwise 503 with the reasons.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from node.chain.ledger import NodeLedger
from node.config import DEFAULT_MAX_BLOCKS_BEHIND

PEER_ASK_TIMEOUT_S = 2.0
PEER_HEIGHTS_TTL_S = 1.0
MAX_QUERY_NUMBER = 1_000_000


class PeerHeights:
    """The heights peers report, asked at most once per TTL whatever the probe rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.asked_at: float | None = None
        self.heights: list[int] = []
        self.lock = asyncio.Lock()

    async def get(self, peers: list[Any]) -> list[int]:
        """Return the heights of the peers that answered."""
        async with self.lock:
            now = self.clock()
            if self.asked_at is None or now - self.asked_at >= PEER_HEIGHTS_TTL_S:
                self.heights = await _ask_heights(peers)
                self.asked_at = self.clock()
            return list(self.heights)


async def _ask_heights(peers: list[Any]) -> list[int]:
    async def ask(peer: Any) -> int | None:
        try:
            status = await asyncio.wait_for(peer.get("/p2p/status"), PEER_ASK_TIMEOUT_S)
        except TimeoutError:
            return None
        height = status.get("height") if isinstance(status, dict) else None
        return height if isinstance(height, int) else None

    answers = await asyncio.gather(*(ask(peer) for peer in peers))
    return [height for height in answers if height is not None]


def parse_count(request: web.Request, name: str, default: int) -> int:
    """Return a non-negative whole-number query parameter; raise ValueError saying why not."""
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 7 or int(text) > MAX_QUERY_NUMBER:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_QUERY_NUMBER}")
    return int(text)


def compute_readiness(
    height: int, peer_heights: list[int], max_blocks_behind: int, min_peers: int
) -> tuple[int, list[str]]:
    """Return how many blocks this node is behind and why it is not ready (empty: ready)."""
    behind = max(0, max(peer_heights, default=height) - height)
    reasons = []
    if len(peer_heights) < min_peers:
        reasons.append(f"{len(peer_heights)} peers answer, at least {min_peers} wanted")
    if behind > max_blocks_behind:
        reasons.append(f"{behind} blocks behind the highest peer, at most {max_blocks_behind}")
    return behind, reasons


async def handle_health(request: web.Request) -> web.Response:
    """GET /health: 200 while the process is alive and serving."""
    return web.json_response({"status": "alive"})


class Readiness:
    """The /readiness handler of one node."""

    def __init__(self, ledger: NodeLedger, peer_links: Callable[[], list[Any]]) -> None:
        self.ledger = ledger
        self.peer_links = peer_links
        self.peer_heights = PeerHeights()

    async def handle(self, request: web.Request) -> web.Response:
        """GET /readiness?max_blocks_behind=N&min_peers=M: 200 if synced and connected."""
        peers = self.peer_links()
        try:
            max_behind = parse_count(request, "max_blocks_behind", DEFAULT_MAX_BLOCKS_BEHIND)
            min_peers = parse_count(request, "min_peers", 1 if peers else 0)
        except ValueError as exc:
            return web.json_response({"error": "bad_query", "message": str(exc)}, status=400)
        heights = await self.peer_heights.get(peers) if peers else []
        height = self.ledger.tip.height
        behind, reasons = compute_readiness(height, heights, max_behind, min_peers)
        document = {
            "ready": not reasons,
            "height": height,
            "blocks_behind": behind,
            "peers_answering": len(heights),
            "peers_configured": len(peers),
            "reasons": reasons,
        }
        return web.json_response(document, status=503 if reasons else 200)
