"""The node's ledger service: joins the pure core, the store, the mempool and the clock.

The consensus driver uses exactly three calls to make blocks: `propose_block`,
`validate_block` and `commit`. Reads go through `reads` (node/chain/reads.py); what
happens is published as typed events (node/chain/events.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from danangchain.block import Block
from danangchain.errors import InvalidTransaction, SealedError
from danangchain.genesis import Genesis, compute_genesis_writes
from danangchain.ledger import (
    BlockResult,
    Candidate,
    ChainTip,
    apply_block,
    build_block,
    get_genesis_tip,
    get_tip_after,
    get_validator_set,
    make_candidate,
)
from danangchain.rules import get_sender_address
from danangchain.sealing import compute_content_hash, decode_envelope
from danangchain.state import Member, StateView
from danangchain.transaction import (
    SealedRecordBody,
    Transaction,
    compute_tx_id,
    decode_transaction,
)
from danangchain.validators import CommitCertificate, ValidatorSet
from node.chain.access_log import AccessLog
from node.chain.events import BlockCommitted, Subscribers, TxAdmitted
from node.chain.mempool import Mempool, MempoolFull
from node.chain.reads import ChainReader
from node.chain.signatures import SignatureChecks
from node.chain.verify_pool import SignaturePool
from node.storage.store import Store

Answer = TypeVar("Answer")

MAX_REMEMBERED_REJECTIONS = 10_000
# Ids of transactions whose signatures the pool accepted, not yet admitted or committed.
MAX_PREVERIFIED = 100_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds a node keeps: per block and for its mempool."""

    block_max_txs: int = 5000
    mempool_max_txs: int = 50_000
    mempool_max_bytes: int = 64 * 1024 * 1024


def wall_clock_ms() -> int:
    """Return the wall clock in milliseconds: the one clock block times come from."""
    return time.time_ns() // 1_000_000


class NodeLedger:
    """Committed chain plus pending transactions, with the operations engines and the API use."""

    def __init__(
        self,
        genesis: Genesis,
        store: Store,
        limits: Limits,
        clock: Callable[[], int] = wall_clock_ms,
        timer: Callable[[], float] = time.perf_counter,
        pool: SignaturePool | None = None,
    ) -> None:
        """`pool` checks the signatures of what arrives in numbers on other cores."""
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self._store = store
        self.limits = limits
        self.clock = clock
        self.timer = timer
        store.initialise(genesis.hash, compute_genesis_writes(genesis), get_genesis_tip(genesis))
        self.tip: ChainTip = store.get_tip()
        self.signatures = SignatureChecks()
        self.pool = pool
        self.preverified: OrderedDict[bytes, None] = OrderedDict()
        # The transactions of the blocks this node built or validated at the next height,
        # until it commits one: their signatures are checked, so a peer's copy arriving
        # meanwhile (gossip a proposal overtook) is admitted without checking it again.
        self._in_flight: set[bytes] = set()
        self._admission_turn: asyncio.Future[None] | None = None
        self.mempool = Mempool(
            self.chain_id,
            limits.mempool_max_txs,
            limits.mempool_max_bytes,
            self.signatures.verify_transaction,
            self._refuse_recorded_document,
            limits.block_max_txs,
        )
        self.rejections: OrderedDict[bytes, str] = OrderedDict()
        self.tx_arrived = asyncio.Event()
        self.admitted: Subscribers[TxAdmitted] = Subscribers()
        self.committed: Subscribers[BlockCommitted] = Subscribers()
        # Refusals and other events by name (peer messages refused, evidence, ...).
        self.counters: dict[str, int] = {}
        self.reads = ChainReader(self, store)
        self.access_log = AccessLog(store)
        self.started_ms = clock()
        # Ids of the transactions whose copy is on disk until they commit (`_keep`).
        self._kept: set[bytes] = set()
        self._unsaved: list[tuple[bytes, bytes]] | None = None
        self._unsaved_sealed: list[tuple[bytes, bytes]] | None = None
        self.restored = self._restore_pending()

    def _restore_pending(self) -> int:
        """Admit again the transactions a previous run had admitted but not committed;
        forget those no longer valid. Return how many came back.

        They are tried in (sender, nonce) order, in passes until one admits nothing more,
        since one can depend on another (an admission, then the member's first record)."""
        waiting = []
        for tx_id, tx_bytes in self._store.list_pending():
            try:
                tx = decode_transaction(tx_bytes)
            except InvalidTransaction:
                self._store.forget_pending([tx_id])
                continue
            waiting.append(make_candidate(tx, tx_bytes))
            self._kept.add(tx_id)
        waiting.sort(key=lambda candidate: (candidate.tx.sender, candidate.tx.nonce))
        restored = 0
        while waiting:
            refused: list[tuple[Candidate, InvalidTransaction]] = []
            for candidate in waiting:
                try:
                    if self._store.get_tx_location(candidate.tx_id) is not None:
                        raise InvalidTransaction.of(
                            "transaction is already committed", rule="duplicate"
                        )
                    self.mempool.admit(candidate, self._store.state, self.tip.height + 1)
                except InvalidTransaction as exc:
                    refused.append((candidate, exc))
                    continue
                except MempoolFull as exc:
                    refused.append((candidate, InvalidTransaction(str(exc), "mempool_full")))
                    continue
                restored += 1
            if len(refused) == len(waiting):
                # Nothing more applies: these are dropped, and `query tx` will say why.
                self._forget_refused([(candidate.tx_id, exc) for candidate, exc in refused])
                break
            waiting = [candidate for candidate, _ in refused]
        if restored:
            self.tx_arrived.set()
        return restored

    # Transactions

    @contextlib.asynccontextmanager
    async def verified_ahead(self, items: Sequence[bytes]) -> AsyncIterator[None]:
        """Check the signatures of transactions about to be submitted on the pool's
        workers, then let the caller submit them: callers get their turn in the order
        they came, so a client's (or a peer's) transactions keep their order."""
        previous = self._admission_turn
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._admission_turn = turn
        try:
            await self.preverify(items)
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            yield
        finally:
            if previous is None or previous.done():
                turn.set_result(None)
            else:
                # Cancelled while waiting (the client left): the next caller still waits
                # for the one before this.
                previous.add_done_callback(lambda _: turn.set_result(None))
            if self._admission_turn is turn:
                self._admission_turn = None

    async def admit_batch(
        self,
        items: Sequence[tuple[bytes, bytes | None]],
        admit: Callable[[bytes, bytes | None], Answer],
    ) -> list[Answer]:
        """Admit a batch of (transaction, sealed content) from a client or a peer in its
        turn (`verified_ahead`), calling `admit` for each; what it admits is kept on disk
        in one write (`admitting`) before this returns."""
        async with self.verified_ahead([tx_bytes for tx_bytes, _ in items]):
            with self.admitting():
                return [admit(tx_bytes, sealed) for tx_bytes, sealed in items]

    async def preverify(self, items: Sequence[bytes]) -> None:
        """Check transaction signatures on the pool's workers ahead of their use (a
        client's batch, a peer's gossip, blocks fetched by sync); what they accept is not
        checked again. Transactions of a block in flight, already checked, are not sent."""
        if self.pool is None:
            return
        if self._in_flight:
            items = [item for item in items if compute_tx_id(item) not in self._in_flight]
        self._note_preverified(await self.pool.accept(items))

    def _note_preverified(self, tx_ids: list[bytes]) -> None:
        for tx_id in tx_ids:
            self.preverified[tx_id] = None
        while len(self.preverified) > MAX_PREVERIFIED:
            self.preverified.popitem(last=False)

    def _use_preverified(self, tx_id: bytes) -> bool:
        """Tell whether the pool accepted a transaction's signature; if so count it as one
        of this node's checks."""
        if tx_id not in self.preverified:
            return False
        self.signatures.checked["transaction", "valid"] += 1
        return True

    def submit(
        self, tx_bytes: bytes, from_peer: bool = False, sealed: bytes | None = None
    ) -> bytes:
        """Admit a transaction to the mempool and return its id; raise InvalidTransaction.

        A sealed record comes with its encrypted content (`sealed`), which the node keeps
        beside the chain. Listeners (gossip, the consensus driver) hear of every admitted
        transaction.
        """
        tx = decode_transaction(tx_bytes)
        candidate = make_candidate(tx, tx_bytes)
        if self._store.get_tx_location(candidate.tx_id) is not None:
            raise InvalidTransaction.of("transaction is already committed", rule="duplicate")
        self._check_sealed_content(tx, sealed, required=not from_peer)
        verified = candidate.tx_id in self.preverified
        # Still admitted when its block is in flight: if that block fails, it must wait
        # here for another (its first node may be a full node, which never proposes).
        checked = verified or candidate.tx_id in self._in_flight
        self.mempool.admit(candidate, self._store.state, self.tip.height + 1, checked)
        if verified:  # counted as this node's check once admitted, and used up
            self._use_preverified(candidate.tx_id)
            del self.preverified[candidate.tx_id]
        if sealed is not None:
            if self._unsaved_sealed is None:
                self._store.put_sealed([(candidate.tx_id, sealed)])
            else:
                self._unsaved_sealed.append((candidate.tx_id, sealed))
        # The node keeps what its own clients sent until it commits (their 202 is a
        # promise); a peer's transaction is kept by the peer that accepted it.
        if not from_peer:
            self._keep(candidate.tx_id, tx_bytes)
        self.rejections.pop(candidate.tx_id, None)
        self.tx_arrived.set()
        self.admitted.publish(TxAdmitted(tx_bytes, candidate.tx_id, from_peer, sealed))
        return candidate.tx_id

    def _check_sealed_content(self, tx: Transaction, sealed: bytes | None, required: bool) -> None:
        """Refuse a sealed record without its encrypted content (from a client), content
        that is not the one the transaction commits to, that names another transaction,
        or that leaves out a party entitled to read it: its creator and counterparty (if
        they published an encryption key) and every audit key. The node cannot read it."""
        body = tx.body
        if not isinstance(body, SealedRecordBody):
            if sealed is not None:
                raise InvalidTransaction.of(
                    "only a sealed record carries sealed content", rule="bad_sealed_content"
                )
            return
        if sealed is None:
            if required:
                raise InvalidTransaction.of(
                    "a sealed record comes with its encrypted content", rule="bad_sealed_content"
                )
            return
        if compute_content_hash(sealed) != body.content_hash:
            raise InvalidTransaction.of(
                "the sealed content is not the one the transaction commits to",
                rule="bad_sealed_content",
            )
        try:
            envelope = decode_envelope(sealed)
        except SealedError as exc:
            raise InvalidTransaction(str(exc), "bad_sealed_content") from None
        view = self.get_committed_view()
        creator = get_sender_address(view, tx.sender)
        binding = envelope.binding
        if (binding.chain_id, binding.creator, binding.nonce, binding.kind) != (
            tx.chain_id,
            creator,
            tx.nonce,
            tx.kind,
        ):
            raise InvalidTransaction.of(
                "the sealed content was made for another transaction", rule="bad_sealed_content"
            )
        parties = [creator] if body.counterparty is None else [creator, body.counterparty]
        wanted = {key for key in (view.get_encryption_key(a) for a in parties) if key}
        wanted.update(view.get_audit_keys())
        missing = wanted - {entry.recipient for entry in envelope.recipients}
        if missing:
            raise InvalidTransaction.of(
                "the sealed content is not encrypted to {count} of the keys entitled to "
                "read it (creator, counterparty, audit keys)",
                rule="missing_recipient",
                count=len(missing),
            )

    def get_sealed(self, tx_id: bytes) -> bytes | None:
        """Return a sealed record's encrypted content that this node holds, unless its
        record was erased (the commit that erased it also deleted it)."""
        envelope = self._store.get_sealed(tx_id)
        if envelope is None:
            return None
        record = self.get_committed_view().get_record(tx_id)
        return None if record is not None and record.erased_height is not None else envelope

    def _refuse_recorded_document(self, document: bytes) -> None:
        """Refuse a record of a document its creator already recorded (the mempool gives
        the record's document key), while that record stands (not cancelled): sending the
        same record twice, from any client, makes one. This is the node's admission
        policy, not a ledger rule, so state is unchanged."""
        earlier = self._store.find_document(document)
        record = None if earlier is None else self.get_committed_view().get_record(earlier)
        if earlier is not None and record is not None and record.cancelled_height is None:
            raise InvalidTransaction.of(
                "the same member already recorded this document: record {record_id} "
                "at height {height}",
                rule="duplicate_record",
                record_id=earlier.hex(),
                height=record.height,
            )

    def _keep(self, tx_id: bytes, tx_bytes: bytes) -> None:
        self._kept.add(tx_id)
        if self._unsaved is None:
            self._store.put_pending([(tx_id, tx_bytes)])
        else:
            self._unsaved.append((tx_id, tx_bytes))

    @contextlib.contextmanager
    def admitting(self) -> Iterator[None]:
        """Submit several transactions, keeping the admitted ones on disk in one write at
        the end (before the caller answers anyone)."""
        self._unsaved, self._unsaved_sealed = [], []
        try:
            yield
        finally:
            unsaved, self._unsaved = self._unsaved, None
            sealed, self._unsaved_sealed = self._unsaved_sealed, None
            self._store.put_pending(unsaved)
            if sealed:
                self._store.put_sealed(sealed)

    def get_pending_member(self, address: bytes) -> Member | None:
        """Return an address's member entry with pending transactions applied."""
        return self.mempool.pending_view(self._store.state).get_member(address)

    def get_committed_view(self) -> StateView:
        """Return a read-only view of committed state."""
        return StateView(self._store.state)

    def get_validator_set(self) -> ValidatorSet:
        """Return the validator set that signs the next height."""
        return get_validator_set(self._store.state)

    # Block production: the engine's three calls

    def propose_block(self, proposer: bytes) -> BlockResult:
        """Build the next block from the mempool, dropping what no longer applies."""
        last_commit = self._store.get_certificate(self.tip.height) if self.tip.height else None
        result, rejected = build_block(
            self._store.state,
            self.tip,
            self.chain_id,
            self.mempool.candidates(self.limits.block_max_txs),
            self.clock(),
            proposer,
            last_commit,
            is_verified=self.mempool.__contains__,
            prepared=self.mempool.get_prepared,
        )
        self._block_in_flight(result)
        if rejected:
            self._forget_refused(rejected)
            self._forget_refused(
                self.mempool.remove(
                    [tx_id for tx_id, _ in rejected], self._store.state, self.tip.height + 1
                )
            )
        return result

    def validate_block(self, block: Block) -> BlockResult:
        """Validate a block proposed by another validator; raise InvalidBlock."""
        verified = self._verify_unknown_signatures(block)
        result = apply_block(
            self._store.state,
            self.tip,
            self.chain_id,
            block,
            is_verified=lambda tx_id: tx_id in self.mempool or tx_id in verified,
            prepared=self.mempool.get_prepared,
        )
        self._block_in_flight(result)
        return result

    def _block_in_flight(self, result: BlockResult) -> None:
        self._in_flight.update(result.tx_ids)
        self.mempool.block_in_flight(result.block.height)

    def _verify_unknown_signatures(self, block: Block) -> set[bytes]:
        """Return the ids of the block's transactions, not in the mempool, whose signatures
        the node's verifier accepts; apply_block checks the others again and says why."""
        verified = set()
        for tx, tx_bytes in zip(block.transactions, block.tx_bytes, strict=False):
            tx_id = compute_tx_id(tx_bytes)
            if tx_id in self.mempool:
                continue
            if self._use_preverified(tx_id):
                verified.add(tx_id)
                continue
            try:
                self.signatures.verify_transaction(tx)
            except InvalidTransaction:
                continue
            verified.add(tx_id)
        return verified

    def commit(self, result: BlockResult, certificate: CommitCertificate) -> None:
        """Write a certified block in one synced batch, then update the mempool."""
        tip = get_tip_after(result)
        started = self.timer()
        self._store.commit(result, certificate, tip, self._kept)
        self._kept.difference_update(result.tx_ids)
        write_seconds = self.timer() - started
        self.tip = tip
        self._in_flight.clear()
        if self.preverified:
            for tx_id in result.tx_ids:
                self.preverified.pop(tx_id, None)
        dropped = self.mempool.remove(result.tx_ids, self._store.state, tip.height + 1)
        self._forget_refused(dropped)
        if not len(self.mempool):
            self.tx_arrived.clear()
        self.committed.publish(BlockCommitted(result, certificate, write_seconds))

    def count(self, what: str, by: int = 1) -> None:
        """Add to one of the node's named counters (refusals, evidence, ...)."""
        self.counters[what] = self.counters.get(what, 0) + by

    # What the consensus driver keeps across restarts

    def load_signing_record(self) -> bytes | None:
        """Return what this validator last signed, as persisted, or None."""
        return self._store.get_signing_record()

    def save_signing_record(self, record: bytes) -> None:
        """Sync what this validator is about to sign to disk, before the message leaves."""
        self._store.put_signing_record(record)

    def keep_evidence(self, height: int, evidence: bytes) -> None:
        """Keep two conflicting signed votes of one validator."""
        self._store.put_evidence(height, hashlib.sha256(evidence).digest(), evidence)

    def _forget_refused(self, rejected: list[tuple[bytes, InvalidTransaction]]) -> None:
        """Forget pending transactions that became invalid, keeping the reason each was
        dropped for clients that ask later."""
        self._store.forget_pending([tx_id for tx_id, _ in rejected])
        self._kept.difference_update(tx_id for tx_id, _ in rejected)
        for tx_id, error in rejected:
            self.rejections[tx_id] = f"{error.code}: {error}"
        while len(self.rejections) > MAX_REMEMBERED_REJECTIONS:
            self.rejections.popitem(last=False)
