"""The consensus driver: maps the pure machine's actions onto peers, timers and the ledger.

It runs every node, from a network of one validator up: a node whose key is in the set
of a height signs it, any other node follows. Events (peer messages, timeouts, answers)
go through one queue and are handled one at a time, so the machine sees a single ordered
stream, as in the simulations; the actions are carried out by node/consensus/dispatch.py,
the same dispatch the simulations run.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import OrderedDict

import aiohttp

from danangchain import ed25519
from danangchain.consensus import (
    Broadcast,
    CommitBlock,
    Consensus,
    Event,
    Message,
    MessageReceived,
    PeerAhead,
    ProposalBlockReady,
    RequestProposalBlock,
    ScheduleTimeout,
    StartHeight,
    TimeoutFired,
    Timeouts,
    TxsAvailable,
    decode_message,
    decode_signing_record,
    encode_message,
)
from danangchain.errors import DanangChainError
from danangchain.sealing import encode_gossip
from node.chain.events import BlockCommitted, TxAdmitted
from node.chain.ledger import NodeLedger
from node.chain.signatures import SignatureChecks
from node.consensus.dispatch import run_until_quiet
from node.consensus.host import LedgerHost
from node.consensus.sync import BlockSync
from node.p2p.service import (
    PeerAccess,
    changes_registry,
    compute_peer_urls,
    create_peer_server,
    registry_certificates,
    to_der,
)
from node.p2p.transport import PeerIdentity, PeerLink, PeerServer
from node.tls import RegistryTrust

log = logging.getLogger("danangchain.consensus")

MAX_EVENTS = 50_000
REBROADCAST_S = 1.0
VERIFIED_CACHE = 200_000
MAX_SEEN_MESSAGES = 20_000


class VerifiedCache:
    """Strict Ed25519 verification remembered per (key, message, signature): a vote that
    peers relay many times is verified (and counted) once."""

    def __init__(self, checks: SignatureChecks, size: int = VERIFIED_CACHE) -> None:
        self.checks = checks
        self.size = size
        self.results: OrderedDict[tuple[bytes, bytes, bytes], bool] = OrderedDict()

    def __call__(self, key: bytes, message: bytes, signature: bytes) -> bool:
        triple = (key, message, signature)
        result = self.results.get(triple)
        if result is None:
            result = self.checks.is_valid(key, message, signature, "vote")
            self.results[triple] = result
            if len(self.results) > self.size:
                self.results.popitem(last=False)
        return result


class ConsensusDriver(LedgerHost):
    """Run one node's consensus: a validator at the heights whose set holds its key,
    a follower at the others."""

    def __init__(
        self,
        ledger: NodeLedger,
        key: ed25519.SigningKey,
        peers: list[str],
        timeouts: Timeouts | None = None,
        allowed_peers: frozenset[bytes] = frozenset(),
        client_ssl: ssl.SSLContext | None = None,
        min_block_interval_s: float = 0.0,
        trust: RegistryTrust | None = None,
        source_host: str | None = None,
    ) -> None:
        super().__init__(ledger, key)
        # Dialed only while the registry names no other node (a genesis without cards).
        self.bootstrap = peers
        self.trust = trust
        self.registered_certificates = (
            frozenset() if trust is None else to_der(registry_certificates(ledger.reads.nodes()))
        )
        # Peers see this node's requests come from the address it listens on.
        self.source_host = source_host
        self.identity = PeerIdentity(key, ledger.chain_id)
        self.client_ssl = client_ssl
        self.min_block_interval_s = min_block_interval_s
        self.access = PeerAccess(ledger, allowed_peers)
        restored_bytes = ledger.load_signing_record()
        restored = None if restored_bytes is None else decode_signing_record(restored_bytes)
        self.machine = Consensus(
            ledger.chain_id,
            key,
            timeouts or Timeouts(),
            restored=restored,
            verify=VerifiedCache(ledger.signatures),
        )
        self.events: asyncio.Queue[Event] = asyncio.Queue(MAX_EVENTS)
        # This height's messages as received (their exact bytes) and as sent: peers relay
        # each message again every second, and a proposal carries a whole block, so a
        # repeat is neither decoded nor encoded twice. Both are emptied at every new height.
        self.seen_messages: set[bytes] = set()
        self.encoded_messages: dict[int, tuple[Message, bytes]] = {}
        self.peers: list[PeerLink] = []
        self.links: dict[str, tuple[PeerLink, asyncio.Task[None]]] = {}
        self.session: aiohttp.ClientSession | None = None
        self.sync = BlockSync(ledger, lambda: self.peers, self._post, self._signs_next)
        self.next_block_at = 0.0
        self.wake_timer: asyncio.TimerHandle | None = None
        self.wake_queued = False
        self.unsubscribe = ledger.admitted.subscribe(self._on_tx_admitted)
        self.unsubscribe_commits = ledger.committed.subscribe(self._on_block_committed)

    # Wiring

    def peer_server(self) -> PeerServer:
        """Return the handlers peers call on this node."""
        check = None if self.trust is None else self._is_registered_certificate
        return create_peer_server(self.ledger, self.access, self._on_peer_messages, check)

    def _is_registered_certificate(self, certificate: bytes | None) -> bool:
        return certificate is not None and certificate in self.registered_certificates

    async def run(self) -> None:
        """Run until cancelled: the event loop, peer senders, rebroadcast and sync."""
        connector = aiohttp.TCPConnector(
            ssl=self.client_ssl if self.client_ssl else True,
            local_addr=None if self.source_host is None else (self.source_host, 0),
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            self.session = session
            self.refresh_peers()
            # Transactions restored from the last run's mempool reach the others again.
            for candidate in self.ledger.mempool.candidates(len(self.ledger.mempool)):
                gossiped = encode_gossip(
                    candidate.tx_bytes, self.ledger.get_sealed(candidate.tx_id)
                )
                for peer in self.peers:
                    peer.send_tx(gossiped, candidate.tx_id)
            tasks = [
                asyncio.create_task(self._rebroadcast()),
                asyncio.create_task(self.sync.run()),
            ]
            self._post(self.start_next_height(after_commit=False))
            try:
                await self._process_events()
            finally:
                tasks += [task for _, task in self.links.values()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.links.clear()

    def refresh_peers(self) -> None:
        """Dial the nodes the registry holds at the tip, drop links to nodes it no longer
        holds (or that moved), and trust the TLS certificates it lists."""
        if self.session is None:
            return
        nodes = self.ledger.reads.nodes()
        if self.trust is not None:
            certificates = registry_certificates(nodes)
            self.trust.trust(certificates)
            self.registered_certificates = to_der(certificates)
        wanted = compute_peer_urls(nodes, self.key.public_key, self.bootstrap)
        for peer_id in list(self.links):
            link, task = self.links[peer_id]
            if wanted.get(peer_id) != link.url:
                task.cancel()
                del self.links[peer_id]
        for peer_id, url in wanted.items():
            if peer_id not in self.links:
                link = PeerLink(url, self.session, self.ledger.counters, self.identity)
                self.links[peer_id] = (link, asyncio.create_task(link.run()))
        self.peers = [link for link, _ in self.links.values()]

    def _signs_next(self) -> bool:
        """Tell whether this node's key is in the set that signs the next height."""
        return self.ledger.get_validator_set().power_of(self.key.public_key) > 0

    def _post(self, event: Event) -> bool:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.ledger.count("events dropped: queue full")
            return False
        return True

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
                self.ledger.count("refused: bad encoding")
                continue
            if self._post(MessageReceived(message)):
                self.seen_messages.add(encoded)

    def _on_tx_admitted(self, event: TxAdmitted) -> None:
        if not event.from_peer:
            gossiped = encode_gossip(event.tx_bytes, event.sealed)
            for peer in self.peers:
                peer.send_tx(gossiped, event.tx_id)
        self._wake_if_due()

    def _wake_if_due(self) -> None:
        """Tell a machine waiting for transactions that some wait, once the block interval
        since the last commit has passed (else when it will have).

        At most one wake-up is queued at a time, and it is checked again when its turn
        comes: a batch of admissions queues one, not one per transaction, and a wake-up
        that a commit made stale (the mempool emptied, the interval began again) starts
        no round, so no empty block is made."""
        if self.wake_timer is not None or self.wake_queued:
            return
        if not self._wake_is_due():
            return
        loop = asyncio.get_running_loop()
        delay = self.next_block_at - loop.time()
        if delay <= 0:
            self.wake_queued = self._post(TxsAvailable())
        else:
            self.wake_timer = loop.call_later(delay, self._wake_when_due)

    def _wake_is_due(self) -> bool:
        """Tell whether the machine waits for transactions and some are pending."""
        return self.machine.waiting_for_txs and len(self.ledger.mempool) > 0

    def _wake_when_due(self) -> None:
        self.wake_timer = None
        self._wake_if_due()

    def start_next_height(self, after_commit: bool = True) -> StartHeight:
        """Return the event that starts the height after the tip.

        Where this validator's own vote is a quorum (a network of one), nothing but the
        block interval gathers transactions into blocks: after a commit, the next block
        waits for it. With other validators the round trip between them does that.
        A node that starts makes its first block at once."""
        validator_set = self.ledger.get_validator_set()
        alone = validator_set.power_of(self.key.public_key) >= validator_set.quorum
        paced = after_commit and alone and self.min_block_interval_s > 0
        loop_time = asyncio.get_running_loop().time()
        self.next_block_at = loop_time + self.min_block_interval_s if paced else loop_time
        return StartHeight(
            self.ledger.tip.height + 1,
            validator_set,
            txs_available=not paced and len(self.ledger.mempool) > 0,
        )

    # The machine

    async def _process_events(self) -> None:
        while True:
            event = await self.events.get()
            if isinstance(event, TxsAvailable):
                self.wake_queued = False
                if (
                    not self._wake_is_due()
                    or self.next_block_at > asyncio.get_running_loop().time()
                ):
                    self._wake_if_due()  # stale: wait for the next transaction or the interval
                    continue
            run_until_quiet(self.machine, self, event)
            if self.machine.waiting_for_txs:
                self._wake_if_due()

    # The actions (node/consensus/dispatch.py routes each one here)

    def broadcast(self, action: Broadcast) -> None:
        """Queue a message for every peer."""
        encoded = self._encode(action.message)
        for peer in self.peers:
            peer.send_message(encoded)

    def propose_block(self, action: RequestProposalBlock) -> Event | None:
        """Build this validator's block. Its own clients' transactions that still wait to
        be gossiped travel in the proposal to every peer, so they are not sent apart (if
        the block fails, this node still holds them and proposes them again)."""
        event = super().propose_block(action)
        if isinstance(event, ProposalBlockReady) and event.block.tx_bytes:
            carried = set(self.results[event.block.hash].tx_ids)
            for peer in self.peers:
                peer.forget_txs(carried)
        return event

    def schedule_timeout(self, action: ScheduleTimeout) -> None:
        """Post the timeout's event when its delay has passed."""
        event = TimeoutFired(action.kind, action.height, action.round)
        asyncio.get_running_loop().call_later(action.delay_ms / 1000, self._post, event)

    def commit_block(self, action: CommitBlock) -> Event | None:
        """Commit a certified block, forget this height's messages, start the next."""
        event = super().commit_block(action)
        self.seen_messages.clear()
        self.encoded_messages.clear()
        return event

    def _on_block_committed(self, event: BlockCommitted) -> None:
        """Follow the registry: only a block that changes it changes whom to dial."""
        if changes_registry(event.result.writes):
            self.refresh_peers()

    def note_peer_ahead(self, action: PeerAhead) -> None:
        """Wake the sync task: some peer is at a later height."""
        self.sync.wanted.set()

    # Helpers

    def _encode(self, message: Message) -> bytes:
        """Encode a message once per height, however often it is rebroadcast."""
        known = self.encoded_messages.get(id(message))
        if known is not None and known[0] is message:
            return known[1]
        encoded = encode_message(message)
        self.encoded_messages[id(message)] = (message, encoded)
        return encoded

    # Background duties

    async def _rebroadcast(self) -> None:
        """Re-send what lagging peers may have missed: HTTP posts to a down peer are lost."""
        while True:
            await asyncio.sleep(REBROADCAST_S)
            for message in self.machine.gossip_set():
                encoded = self._encode(message)
                for peer in self.peers:
                    peer.send_message(encoded)
