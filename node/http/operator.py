"""What a node serves besides the client API's core: metrics, health, events, the
explorer and the OpenAPI document. `create_app` calls `add_operator_routes` once.

One background task per app publishes committed blocks as the ledger announces them (see
node/http/chain_feed.py). The consensus driver, set under PEERS by node/wiring.py before
the app starts, gives the peers; an app without one (tests in-process) has none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from node.chain.ledger import NodeLedger
from node.http.chain_feed import ChainFeed
from node.http.events import FEED, SOCKETS, close_sockets, handle_events
from node.http.explorer import add_explorer_routes
from node.http.health import Readiness, handle_health
from node.http.metrics import NodeMetrics
from node.http.openapi import handle_openapi
from node.p2p.transport import PeerDirectory

PEERS = web.AppKey("peers", PeerDirectory)
METRICS = web.AppKey("metrics", NodeMetrics)


def add_operator_routes(
    app: web.Application, ledger: NodeLedger, node_info: dict[str, Any]
) -> None:
    """Add metrics, health, readiness, events, OpenAPI and the explorer to an API app."""
    feed = ChainFeed(ledger)
    metrics = NodeMetrics(ledger)
    feed.observers.append(metrics)
    app[FEED] = feed
    app[METRICS] = metrics
    app[SOCKETS] = set()
    readiness = Readiness(ledger, metrics.peer_links)

    async def get_metrics(request: web.Request) -> web.Response:
        feed.catch_up()
        return await metrics.handle_metrics(request)

    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/health", handle_health)
    app.router.add_get("/readiness", readiness.handle)
    app.router.add_get("/events", handle_events)
    app.router.add_get("/openapi.json", handle_openapi)
    add_explorer_routes(app, str(node_info.get("node_name", "")))
    app.cleanup_ctx.append(_run_feed)
    app.on_shutdown.append(close_sockets)


async def _run_feed(app: web.Application) -> AsyncIterator[None]:
    """Start the feed's task and the metrics' subscriptions with the app; end them at cleanup."""
    feed, metrics = app[FEED], app[METRICS]
    ledger = feed.ledger
    metrics.peers = app.get(PEERS)
    feed.seed()
    unsubscribe = [
        ledger.committed.subscribe(feed.on_commit),
        ledger.committed.subscribe(metrics.on_block_committed),
        ledger.admitted.subscribe(metrics.on_tx_admitted),
    ]
    task = asyncio.create_task(feed.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for undo in unsubscribe:
        undo()
