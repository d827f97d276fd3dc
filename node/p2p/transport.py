"""Peer traffic over HTTP: consensus messages, transaction gossip and block sync.

Every body is canonical msgpack. Consensus messages carry their validator's signature
and are checked by the consensus machine before use; gossiped transactions go through
the same admission as the client API; synced blocks are checked against certificates.
Queues and bodies are bounded, so a peer cannot exhaust a node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Container, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from danangchain import ed25519
from danangchain.encoding import pack, unpack
from danangchain.errors import DanangChainError
from danangchain.signing import compute_peer_signing_bytes
from node.chain.signatures import SignatureChecks

log = logging.getLogger("danangchain.p2p")

MAX_P2P_BODY = 32 * 1024 * 1024
MAX_BATCH = 256
MAX_QUEUE = 20_000
MAX_SYNC_BLOCKS = 64
SEND_TIMEOUT_S = 5.0
MAX_CLOCK_SKEW_MS = 120_000
HEADER_KEY, HEADER_TIME, HEADER_SIGNATURE = "X-Node-Key", "X-Node-Time", "X-Node-Signature"


@dataclass(frozen=True)
class PeerIdentity:
    """This node's key, with which it signs every request to its peers."""

    key: ed25519.SigningKey
    chain_id: str

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        """Return the headers that authenticate one request."""
        time_ms = time.time_ns() // 1_000_000
        signed = compute_peer_signing_bytes(self.chain_id, method, path, time_ms, body)
        return {
            HEADER_KEY: self.key.public_key.hex(),
            HEADER_TIME: str(time_ms),
            HEADER_SIGNATURE: ed25519.sign(self.key, signed).hex(),
        }


def check_peer_request(
    chain_id: str,
    is_allowed: Callable[[bytes], bool],
    checks: SignatureChecks,
    headers: Any,
    method: str,
    path: str,
    body: bytes,
    now_ms: int,
) -> str | None:
    """Return why a peer request must be refused, or None to accept it."""
    try:
        key = bytes.fromhex(headers.get(HEADER_KEY, ""))
        time_ms = int(headers.get(HEADER_TIME, ""))
        signature = bytes.fromhex(headers.get(HEADER_SIGNATURE, ""))
    except ValueError:
        return "unsigned request"
    if len(key) != 32 or len(signature) != 64:
        return "unsigned request"
    if not is_allowed(key):
        return "unknown peer"
    if abs(now_ms - time_ms) > MAX_CLOCK_SKEW_MS:
        return "stale request"
    signed = compute_peer_signing_bytes(chain_id, method, path, time_ms, body)
    if not checks.is_valid(key, signed, signature, "peer_request"):
        return "bad request signature"
    return None


class PeerLink:
    """One peer: bounded outgoing queues, sent in batches by a background task."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        counters: dict[str, int],
        identity: PeerIdentity,
    ) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.identity = identity
        self.counters = counters
        self.messages: deque[bytes] = deque(maxlen=MAX_QUEUE)
        self.txs: deque[tuple[bytes, bytes]] = deque(maxlen=MAX_QUEUE)  # (tx id, item)
        self.wake = asyncio.Event()
        self.connected = False

    def send_message(self, encoded: bytes) -> None:
        """Queue a consensus message (the oldest goes if the queue is full)."""
        self.messages.append(encoded)
        self.wake.set()

    def send_tx(self, item: bytes, tx_id: bytes) -> None:
        """Queue a transaction (its gossip item: the bytes, or with sealed content) for gossip."""
        self.txs.append((tx_id, item))
        self.wake.set()

    def forget_txs(self, tx_ids: Container[bytes]) -> int:
        """Drop queued transactions that need not be sent apart (a proposal of this node
        carries them); return how many. A batch on its way is not recalled."""
        kept = [entry for entry in self.txs if entry[0] not in tx_ids]
        dropped = len(self.txs) - len(kept)
        if dropped:
            self.txs.clear()  # in place: a failed send puts its batch back in this queue
            self.txs.extend(kept)
        return dropped

    async def run(self) -> None:
        """Send queued batches until cancelled; on failure back off and drop the batch."""
        backoff = 0.1
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.messages or self.txs:
                ok = await self._flush_messages()
                ok = await self._flush_txs() and ok
                if not ok:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                else:
                    backoff = 0.1

    async def _flush_messages(self) -> bool:
        if not self.messages:
            return True
        batch = [self.messages.popleft() for _ in range(min(MAX_BATCH, len(self.messages)))]
        return bool(await self._post("/p2p/consensus", batch))

    async def _flush_txs(self) -> bool:
        if not self.txs:
            return True
        batch = [self.txs.popleft() for _ in range(min(MAX_BATCH, len(self.txs)))]
        answered = await self._post("/p2p/txs", [item for _, item in batch])
        if answered is None:
            self.txs.extendleft(reversed(batch))  # transactions wait for the peer's return
        return bool(answered)

    async def _post(self, path: str, batch: list[bytes]) -> bool | None:
        """Post a batch: True if the peer took it, False if it answered with an error,
        None if it could not be reached."""
        body = pack(batch)
        headers = {
            "Content-Type": "application/msgpack",
            **self.identity.headers("POST", path, body),
        }
        try:
            async with self.session.post(
                self.url + path,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
            ) as response:
                await response.read()
                self.connected = response.status < 400
                return self.connected
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.connected = False
            self.counters["peer send failures"] = self.counters.get("peer send failures", 0) + 1
            return None

    async def get(self, path: str) -> Any:
        """GET a msgpack document from the peer, or None if it cannot be had."""
        try:
            async with self.session.get(
                self.url + path,
                headers=self.identity.headers("GET", path, b""),
                timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S),
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
    if (
        not isinstance(batch, list)
        or len(batch) > MAX_BATCH
        or not all(isinstance(item, bytes) for item in batch)
    ):
        raise web.HTTPBadRequest(text=f"expected an array of at most {MAX_BATCH} byte strings")
    return batch


def _peer_certificate(request: web.Request) -> bytes | None:
    """Return the DER certificate the peer presented on this TLS connection, or None."""
    transport = request.transport
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    certificate: bytes | None = ssl_object.getpeercert(binary_form=True)
    return certificate


class PeerDirectory(Protocol):
    """Whatever holds this node's links to its peers (the consensus driver)."""

    @property
    def peers(self) -> Sequence[PeerLink]:
        """Return the links, one per peer."""
        ...


class PeerServer:
    """The routes peers call: each request must be signed by a node allowed to connect;
    handlers hand the work to the callbacks given."""

    def __init__(
        self,
        chain_id: str,
        is_allowed: Callable[[bytes], bool],
        checks: SignatureChecks,
        counters: dict[str, int],
        on_messages: Callable[[list[bytes]], None],
        on_txs: Callable[[list[bytes]], Awaitable[None]],
        get_height: Callable[[], int],
        get_certified_block: Callable[[int], tuple[bytes, bytes] | None],
        is_registered_certificate: Callable[[bytes | None], bool] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.is_allowed = is_allowed
        self.checks = checks
        self.counters = counters
        self.on_messages = on_messages
        self.on_txs = on_txs
        self.get_height = get_height
        self.get_certified_block = get_certified_block
        # Over TLS: the peer's certificate must be one the registry lists, not merely one
        # that a registered node's key could have issued.
        self.is_registered_certificate = is_registered_certificate

    def create_app(self) -> web.Application:
        """Build the peer-facing application."""
        app = web.Application(client_max_size=MAX_P2P_BODY, middlewares=[self.admission])
        app.router.add_post("/p2p/consensus", self.post_consensus)
        app.router.add_post("/p2p/txs", self.post_txs)
        app.router.add_get("/p2p/status", self.get_status)
        app.router.add_get("/p2p/blocks/{start}", self.get_blocks)
        return app

    @web.middleware
    async def admission(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Refuse, and count, any request not signed by an allowed node."""
        body = await request.read()
        reason = check_peer_request(
            self.chain_id,
            self.is_allowed,
            self.checks,
            request.headers,
            request.method,
            request.path_qs,
            body,
            time.time_ns() // 1_000_000,
        )
        check = self.is_registered_certificate
        if reason is None and check is not None and not check(_peer_certificate(request)):
            reason = "unregistered certificate"
        if reason is not None:
            name = f"refused peer: {reason}"
            self.counters[name] = self.counters.get(name, 0) + 1
            return web.json_response(
                {"error": reason.replace(" ", "_"), "message": reason},
                status=401 if reason not in ("unknown peer", "unregistered certificate") else 403,
            )
        response: web.StreamResponse = await handler(request)
        return response

    async def post_consensus(self, request: web.Request) -> web.Response:
        self.on_messages(await _read_batch(request))
        return web.Response(status=204)

    async def post_txs(self, request: web.Request) -> web.Response:
        await self.on_txs(await _read_batch(request))
        return web.Response(status=204)

    async def get_status(self, request: web.Request) -> web.Response:
        return web.Response(
            body=pack({"height": self.get_height()}), content_type="application/msgpack"
        )

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
