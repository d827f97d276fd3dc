"""GET /events: a websocket of new blocks and committed transactions, as JSON texts.

Without a filter a client hears every block and every transaction; `?types=block` (or
`tx`) picks one kind; with `?address=dn1...` only the transactions that concern that
address (its own, and those naming it): who deals with whom is the member's own, so that
subscription is signed by the member or an auditor. Records come with their private
fields withheld, and name only their sender among the addresses. A client too slow to
keep up is disconnected (close code 1013) rather than letting its queue grow without
bound.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, web

from danangchain.address import decode_address, encode_address
from danangchain.errors import AddressError
from node.http.access import READS
from node.http.chain_feed import EVENT_KINDS, ChainFeed, Subscription

FEED = web.AppKey("chain_feed", ChainFeed)
SOCKETS = web.AppKey[set[web.WebSocketResponse]]("event_sockets")
HEARTBEAT_S = 30.0


async def handle_events(request: web.Request) -> web.StreamResponse:
    """Upgrade to a websocket and forward the feed's events until either side closes."""
    feed = request.app[FEED]
    text = request.query.get("address")
    try:
        address = None if text is None else decode_address(text)
    except AddressError as exc:
        return web.json_response({"error": "bad_address", "message": str(exc)}, status=400)
    if address is not None:
        access = request.app[READS]
        reader = access.require_reader(request)
        access.check_entitled(reader, frozenset({address}))
        access.log_read(reader, frozenset({address}), "events", encode_address(address))
    kinds = frozenset(request.query.get("types", "block,tx").split(","))
    if not kinds <= EVENT_KINDS:
        message = "types must be block, tx or block,tx"
        return web.json_response({"error": "bad_types", "message": message}, status=400)
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    if not socket.can_prepare(request).ok:
        return web.json_response(
            {"error": "websocket_expected", "message": "connect with a websocket client"},
            status=400,
        )
    subscription = feed.subscribe(address, kinds)
    start_height = feed.height  # events follow from the next height on
    sockets = request.app[SOCKETS]
    try:
        await socket.prepare(request)
        sockets.add(socket)
        await socket.send_json(
            {
                "type": "hello",
                "chain_id": feed.ledger.chain_id,
                "height": start_height,
                "address": None if address is None else encode_address(address),
            }
        )
        sender = asyncio.create_task(_forward(subscription, socket))
        try:
            async for _ in socket:
                pass  # clients only listen: anything they send is ignored
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    finally:
        feed.unsubscribe(subscription)
        sockets.discard(socket)
    return socket


async def _forward(subscription: Subscription, socket: web.WebSocketResponse) -> None:
    while True:
        text = await subscription.queue.get()
        if subscription.lagged:
            await socket.close(
                code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow: events were dropped"
            )
            return
        await socket.send_str(text)


async def close_sockets(app: web.Application) -> None:
    """On shutdown, close every events websocket so the node stops without waiting."""
    sockets = app[SOCKETS]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")
