"""The consensus driver: maps the pure machine's actions onto peers, timers and the store.

Events (peer messages, timeouts, answers) go through one queue and are handled one at a
time, so the machine sees a single ordered stream, as in the simulations.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections import OrderedDict, deque
from typing import Any

import aiohttp

from danangchain import ed25519
from danangchain.block import decode_block
from danangchain.consensus import (
    BlockValidated,
    Broadcast,
    CertifiedBlockReceived,
    CommitBlock,
    Consensus,
    Event,
    EvidenceFound,
    MessageDropped,
    MessageReceived,
    PeerAhead,
    PersistSigning,
    ProposalBlockReady,
    RequestProposalBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    Timeouts,
    TxsAvailable,
    ValidateBlock,
    decode_message,
    decode_signing_record,
    encode_message,
    encode_signing_record,
)
from danangchain.encoding import pack
from danangchain.errors import DanangChainError, InvalidBlock
from danangchain.ledger import (
    BlockResult,
)
from danangchain.validators import decode_certificate
from node.chain import signatures
from node.chain.ledger import NodeLedger
from node.p2p.service import PeerAccess, create_peer_server
from node.p2p.transport import PeerIdentity, PeerLink, PeerServer

log = logging.getLogger("danangchain.consensus")

MAX_EVENTS = 50_000
REBROADCAST_S = 1.0
SYNC_POLL_S = 1.0
SYNC_PATIENCE_S = 2.0
SYNC_STALL_S = 2.0
VERIFIED_CACHE = 200_000
MAX_SEEN_MESSAGES = 20_000
# How far ahead of this node's clock a fresh proposal's time may be for a prevote.
MAX_CLOCK_AHEAD_MS = 10_000


class VerifiedCache:
    """Strict Ed25519 verification remembered per (key, message, signature): a vote that
    peers relay many times is verified once."""

    def __init__(self, size: int = VERIFIED_CACHE) -> None:
        self.size = size
        self.results: OrderedDict[tuple[bytes, bytes, bytes], bool] = OrderedDict()

    def __call__(self, key: bytes, message: bytes, signature: bytes) -> bool:
        triple = (key, message, signature)
        result = self.results.get(triple)
        if result is None:
            result = signatures.is_valid_signature(key, message, signature)
            self.results[triple] = result
            if len(self.results) > self.size:
                self.results.popitem(last=False)
        return result


class ConsensusDriver:
    """Run one node's consensus: a validator if its key is in the set, else a follower."""

    def __init__(
        self,
        ledger: NodeLedger,
        key: ed25519.SigningKey,
        peers: list[str],
        timeouts: Timeouts | None = None,
        allowed_peers: frozenset[bytes] = frozenset(),
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.ledger = ledger
        self.store = ledger.store
        self.key = key
        self.peer_urls = peers
        self.identity = PeerIdentity(key, ledger.chain_id)
        self.client_ssl = client_ssl
        self.access = PeerAccess(ledger, allowed_peers)
        self.counters = ledger.counters
        restored_bytes = self.store.get_signing_record()
        restored = None if restored_bytes is None else decode_signing_record(restored_bytes)
        # The machine signs only at heights whose set holds this key: a full node that is
        # voted in starts signing by itself two heights after the vote.
        self.machine = Consensus(
            ledger.chain_id, key, timeouts or Timeouts(), restored=restored, verify=VerifiedCache()
        )
        self.events: asyncio.Queue[Event] = asyncio.Queue(MAX_EVENTS)
        self.results: dict[bytes, BlockResult] = {}
        # This height's messages as received (their exact bytes) and as sent: peers relay
        # each message again every second, and a proposal carries a whole block, so a
        # repeat is neither decoded nor encoded twice. Both are emptied at every new height.
        self.seen_messages: set[bytes] = set()
        self.encoded_messages: dict[int, tuple[Any, bytes]] = {}
        self.peers: list[PeerLink] = []
        self.sync_wanted = asyncio.Event()
        self.syncing = False
        ledger.tx_listeners.append(self._on_tx_admitted)

    # Wiring

    def peer_server(self) -> PeerServer:
        """Return the handlers peers call on this node."""
        return create_peer_server(self.ledger, self.access, self._on_peer_messages)

    async def run(self) -> None:
        """Run until cancelled: the event loop, peer senders, rebroadcast and sync."""
        connector = aiohttp.TCPConnector(ssl=self.client_ssl if self.client_ssl else True)
        async with aiohttp.ClientSession(connector=connector) as session:
            self.peers = [
                PeerLink(url, session, self.counters, self.identity) for url in self.peer_urls
            ]
            tasks = [asyncio.create_task(peer.run()) for peer in self.peers]
            # Transactions restored from the last run's mempool reach the others again.
            for candidate in self.ledger.mempool.candidates(len(self.ledger.mempool)):
                for peer in self.peers:
                    peer.send_tx(candidate.tx_bytes)
            tasks += [
                asyncio.create_task(self._rebroadcast()),
                asyncio.create_task(self._sync_loop()),
            ]
            self._post(
                StartHeight(
                    self.ledger.tip.height + 1,
                    self.ledger.get_validator_set(),
                    txs_available=len(self.ledger.mempool) > 0,
                )
            )
            try:
                await self._process_events()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _post(self, event: Event) -> bool:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self._count("events dropped: queue full")
            return False
        return True

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    # Inputs

    def _on_peer_messages(self, batch: list[bytes]) -> None:
        for encoded in batch:
            # Within a height the same bytes always meet the same fate: skip repeats.
            if encoded in self.seen_messages:
                continue
            if len(self.seen_messages) >= MAX_SEEN_MESSAGES:
                self.seen_messages.clear()
            try:
                message = decode_message(encoded)
            except DanangChainError:
                self.seen_messages.add(encoded)
                self._count("refused: bad encoding")
                continue
            if self._post(MessageReceived(message)):
                self.seen_messages.add(encoded)

    def _on_tx_admitted(self, tx_bytes: bytes, from_peer: bool) -> None:
        if not from_peer:
            for peer in self.peers:
                peer.send_tx(tx_bytes)
        if self.machine.waiting_for_txs:
            self._post(TxsAvailable())

    # The machine

    async def _process_events(self) -> None:
        while True:
            event = await self.events.get()
            pending: deque[Event] = deque([event])
            while pending:
                for action in self.machine.step(pending.popleft()):
                    follow_up = self._carry_out(action)
                    if follow_up is not None:
                        pending.append(follow_up)

    def _carry_out(self, action: Any) -> Event | None:
        if isinstance(action, PersistSigning):
            self.store.put_signing_record(encode_signing_record(action.record))
        elif isinstance(action, Broadcast):
            encoded = self._encode(action.message)
            for peer in self.peers:
                peer.send_message(encoded)
        elif isinstance(action, ScheduleTimeout):
            event = TimeoutFired(action.kind, action.height, action.round)
            asyncio.get_running_loop().call_later(action.delay_ms / 1000, self._post, event)
        elif isinstance(action, RequestProposalBlock):
            result = self.ledger.propose_block(self.key.public_key)
            self.results[result.block.hash] = result
            return ProposalBlockReady(action.height, action.round, result.block)
        elif isinstance(action, ValidateBlock):
            valid = self._validate(action.block) is not None
            return BlockValidated(action.block.hash, valid, self._is_timely(action.block))
        elif isinstance(action, CommitBlock):
            return self._commit(action)
        elif isinstance(action, EvidenceFound):
            self._keep_evidence(action)
        elif isinstance(action, MessageDropped):
            self._count(f"refused: {action.reason}")
        elif isinstance(action, PeerAhead):
            self.sync_wanted.set()
        return None

    def _encode(self, message: Any) -> bytes:
        """Encode a message once per height, however often it is rebroadcast."""
        known = self.encoded_messages.get(id(message))
        if known is not None and known[0] is message:
            return known[1]
        encoded = encode_message(message)
        self.encoded_messages[id(message)] = (message, encoded)
        return encoded

    def _validate(self, block: Any) -> BlockResult | None:
        result = self.results.get(block.hash)
        if result is None:
            try:
                result = self.ledger.validate_block(block)
            except (InvalidBlock, DanangChainError) as exc:
                log.warning(
                    "invalid block %s at height %d: %s", block.hash.hex()[:12], block.height, exc
                )
                return None
            self.results[block.hash] = result
        return result

    def _is_timely(self, block: Any) -> bool:
        """Tell whether a block's time is at most MAX_CLOCK_AHEAD_MS ahead of this node's
        clock: a fresh proposal from the future gets a nil prevote, so no proposer with a
        fast (or lying) clock can push the chain's time ahead of the validators' own."""
        ahead = block.header.time_ms - self.ledger.clock()
        if ahead <= MAX_CLOCK_AHEAD_MS:
            return True
        self._count("refused: block time ahead of this node's clock")
        log.warning(
            "block %s at height %d is timed %.1fs ahead of this node's clock",
            block.hash.hex()[:12],
            block.height,
            ahead / 1000,
        )
        return False

    def _commit(self, action: CommitBlock) -> Event:
        result = self._validate(action.block)
        if result is None:
            # More than 1/3 of the validators certified an invalid block: refuse to go on.
            raise RuntimeError(f"certified block {action.block.hash.hex()} is invalid")
        self.ledger.commit(result, action.certificate)
        self.results.clear()
        self.seen_messages.clear()
        self.encoded_messages.clear()
        self.access.refresh()
        log.info("committed block %d (%d transactions)", action.block.height, len(result.tx_ids))
        return StartHeight(
            self.ledger.tip.height + 1,
            self.ledger.get_validator_set(),
            txs_available=len(self.ledger.mempool) > 0,
        )

    def _keep_evidence(self, evidence: EvidenceFound) -> None:
        encoded = pack([encode_message(evidence.first), encode_message(evidence.second)])
        self.store.put_evidence(evidence.first.height, hashlib.sha256(encoded).digest(), encoded)
        self._count("evidence")
        log.warning(
            "validator %s signed two %ss at height %d round %d",
            evidence.first.validator.hex()[:12],
            evidence.first.vote_type,
            evidence.first.height,
            evidence.first.round,
        )

    # Background duties

    async def _rebroadcast(self) -> None:
        """Re-send what lagging peers may have missed: HTTP posts to a down peer are lost."""
        while True:
            await asyncio.sleep(REBROADCAST_S)
            for message in self.machine.gossip_set():
                encoded = self._encode(message)
                for peer in self.peers:
                    peer.send_message(encoded)

    async def _sync_loop(self) -> None:
        """Fetch certified blocks from a peer that is ahead, then rejoin consensus.

        A peer one block ahead has usually just committed the block this node is about
        to commit through consensus: that block is fetched only when this node's tip has
        not moved for SYNC_PATIENCE_S (a lagging node, or a network gone quiet).
        """
        stuck_at, stuck_since = -1, 0.0
        loop = asyncio.get_running_loop()
        first = True
        while True:
            if not first:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.sync_wanted.wait(), SYNC_POLL_S)
            first = False
            self.sync_wanted.clear()
            if self.ledger.tip.height != stuck_at:
                stuck_at, stuck_since = self.ledger.tip.height, loop.time()
            patient = loop.time() - stuck_since < SYNC_PATIENCE_S
            for peer in self.peers:
                status = await peer.get("/p2p/status")
                if not isinstance(status, dict) or not isinstance(status.get("height"), int):
                    continue
                if status["height"] > self.ledger.tip.height + int(patient):
                    await self._fetch_from(peer, status["height"])

    async def _fetch_from(self, peer: PeerLink, their_height: int) -> None:
        """Fetch, check and apply blocks up to a peer's height; the next range is asked
        for while this one is applied, so the peer prepares it in the meantime."""
        start = self.ledger.tip.height + 1
        fetching = asyncio.ensure_future(peer.get(f"/p2p/blocks/{start}"))
        try:
            while True:
                pairs = await fetching
                if not isinstance(pairs, list) or not pairs:
                    return
                target = start + len(pairs) - 1
                if target < their_height:
                    fetching = asyncio.ensure_future(peer.get(f"/p2p/blocks/{target + 1}"))
                if not self._post_synced(pairs) or not await self._wait_for_tip(target):
                    return
                if target >= their_height:
                    return
                start = target + 1
        finally:
            fetching.cancel()

    def _post_synced(self, pairs: list[Any]) -> bool:
        """Decode [block, certificate] pairs and hand them to the machine; False if bad."""
        for pair in pairs:
            try:
                block = decode_block(pair[0])
                certificate = decode_certificate(pair[1])
            except (DanangChainError, TypeError, IndexError):
                self._count("refused: bad synced block")
                return False
            self._post(CertifiedBlockReceived(block, certificate))
        return True

    async def _wait_for_tip(self, target: int) -> bool:
        """Wait until the tip reaches a height; False if it stops moving for SYNC_STALL_S."""
        loop = asyncio.get_running_loop()
        height, moved = self.ledger.tip.height, loop.time()
        while self.ledger.tip.height < target:
            if self.ledger.tip.height != height:
                height, moved = self.ledger.tip.height, loop.time()
            elif loop.time() - moved > SYNC_STALL_S:
                return False
            await asyncio.sleep(0.005)
        return True
