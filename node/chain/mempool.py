"""The mempool: transactions admitted once (signature checked once), bounded, in order.

Admission applies each transaction to a pending view (committed state plus every
pending transaction), so a client hears at once about any rule it breaks, nonces are
counted across pending transactions, and the proposer's block rarely drops anything.

Each pending transaction keeps its prepared effects (danangchain/ledger.py
`prepare_transaction`): what it read (key and value seen), what it wrote, and the height
its rules ran at. After a commit the pending view is rebuilt in order; a transaction
whose reads all still see the same values would run exactly as before, so its writes
are reused, and only the others are applied again (the rules read state through `get`
alone, and their outcome depends on nothing else but the transaction and the height
stamped in records). The same effects serve the blocks this node builds and validates
(`get_prepared`), where the core reuses them only for the height they were computed for.
So each transaction is checked and prepared for the height it is expected to land in:
blocks are filled in mempool order up to their limits, as build_block fills them, and a
transaction admitted while the block of the next height is already built or validated
(`block_in_flight`) goes into a later one. A wrong guess costs one more run of the
rules in the block, never a different block.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from danangchain.block import MAX_BLOCK_SIZE, MAX_BLOCK_TXS
from danangchain.errors import InvalidTransaction
from danangchain.ledger import Candidate, PreparedEffects, prepare_transaction
from danangchain.rules import get_document_key
from danangchain.state import StateReader, StateView
from danangchain.transaction import Transaction
from node.chain.signatures import verify_transaction


class MempoolFull(Exception):
    """The mempool holds as many transactions or bytes as it may."""


class _BlockFill:
    """The block the last pending transaction is expected in, and how full it is."""

    __slots__ = ("height", "count", "size", "max_txs")

    def __init__(self, height: int, max_txs: int) -> None:
        self.height = height
        self.count = 0
        self.size = 0
        self.max_txs = max_txs

    def _full_for(self, tx_size: int) -> bool:
        return self.count >= self.max_txs or self.size + tx_size > MAX_BLOCK_SIZE // 2

    def next_height(self, tx_size: int) -> int:
        """Return the height the next transaction of this size is expected in."""
        return self.height + 1 if self._full_for(tx_size) else self.height

    def add(self, tx_size: int) -> None:
        """Place the next transaction."""
        if self._full_for(tx_size):
            self.height, self.count, self.size = self.height + 1, 0, 0
        self.count += 1
        self.size += tx_size


class Mempool:
    """Pending transactions in admission order, with their combined effect on state."""

    def __init__(
        self,
        chain_id: str,
        max_txs: int,
        max_bytes: int,
        verify: Callable[[Transaction], None] = verify_transaction,
        refuse_recorded: Callable[[bytes], None] = lambda document: None,
        block_max_txs: int = MAX_BLOCK_TXS,
    ) -> None:
        """`refuse_recorded` raises InvalidTransaction for a record's document key
        (creator, digest, category) that is already recorded and committed;
        `block_max_txs` is how many transactions this node puts in a block."""
        self.chain_id = chain_id
        self.verify = verify
        self.refuse_recorded = refuse_recorded
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, Candidate] = OrderedDict()
        self._effects: dict[bytes, PreparedEffects] = {}
        self.block_max_txs = min(block_max_txs, MAX_BLOCK_TXS)
        # The least height a transaction admitted now can go into (block_in_flight), and
        # the block the last one admitted is expected in.
        self._least_height = 0
        self._tail = _BlockFill(0, self.block_max_txs)
        self._bytes = 0
        self._pending: StateView | None = None
        # (creator address + document digest) -> id of the pending record of that document
        self._documents: dict[bytes, bytes] = {}
        self._document_of: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._entries

    def candidates(self, limit: int) -> list[Candidate]:
        """Return up to `limit` pending transactions, oldest first."""
        result: list[Candidate] = []
        for candidate in self._entries.values():
            if len(result) >= limit:
                break
            result.append(candidate)
        return result

    def get_prepared(self, tx_id: bytes) -> PreparedEffects | None:
        """Return a pending transaction's effects as its rules last ran here, or None."""
        return self._effects.get(tx_id)

    def block_in_flight(self, height: int) -> None:
        """Note that this node built or validated a block of `height`: a transaction
        admitted from now on goes into a later one, unless that block fails (then the
        block that replaces it runs its rules again)."""
        self._least_height = max(self._least_height, height + 1)

    def pending_view(self, state: StateReader) -> StateView:
        """Return the view of committed state with every pending transaction applied."""
        if self._pending is None:
            self._pending = StateView(state)
        return self._pending

    def admit(
        self, candidate: Candidate, state: StateReader, next_height: int, verified: bool = False
    ) -> None:
        """Check a transaction against state plus pending ones and keep it; raise if refused.

        `verified` says its signature was already found valid by the node's verifier."""
        if candidate.tx_id in self._entries:
            raise InvalidTransaction.of("transaction is already pending", rule="duplicate")
        pending = self.pending_view(state)
        document = get_document_key(pending, candidate.tx)
        if document is not None:
            self.refuse_recorded(document)
        if (
            len(self._entries) >= self.max_txs
            or self._bytes + len(candidate.tx_bytes) > self.max_bytes
        ):
            raise MempoolFull(f"mempool is full ({len(self._entries)} transactions)")
        if document is not None and document in self._documents:
            raise InvalidTransaction.of(
                "the same member already sent a record of this document: "
                "transaction {tx_id}, still pending",
                rule="duplicate_record",
                tx_id=self._documents[document].hex(),
            )
        size = len(candidate.tx_bytes)
        if self._tail.height < max(next_height, self._least_height):
            self._tail = _BlockFill(max(next_height, self._least_height), self.block_max_txs)
        effects = self._apply(candidate, pending, self._tail.next_height(size))
        # Verify the signature last: it is the costly check, and done once per node.
        if not verified:
            self.verify(candidate.tx)
        self._tail.add(size)
        for key, value in effects.writes.items():
            pending.put(key, value)
        self._entries[candidate.tx_id] = candidate
        self._effects[candidate.tx_id] = effects
        self._bytes += len(candidate.tx_bytes)
        if document is not None:
            self._documents[document] = candidate.tx_id
            self._document_of[candidate.tx_id] = document

    def _apply(self, candidate: Candidate, view: StateView, height: int) -> PreparedEffects:
        """Apply a transaction's rules (not its signature) over a view, without changing it,
        for the block it is expected in; return its effects, or raise InvalidTransaction."""
        return prepare_transaction(view, candidate.tx, candidate.tx_id, self.chain_id, height)

    def remove(
        self, tx_ids: Sequence[bytes], state: StateReader, next_height: int
    ) -> list[tuple[bytes, InvalidTransaction]]:
        """Drop transactions (committed or refused), re-apply the rest to state; return drops."""
        for tx_id in tx_ids:
            candidate = self._entries.pop(tx_id, None)
            if candidate is not None:
                self._forget(tx_id, candidate)
        pending = self._pending = StateView(state)
        dropped: list[tuple[bytes, InvalidTransaction]] = []
        tail = _BlockFill(next_height, self.block_max_txs)
        for tx_id, candidate in list(self._entries.items()):
            effects = self._effects[tx_id]
            size = len(candidate.tx_bytes)
            if any(pending.get(key) != value for key, value in effects.reads.items()):
                try:
                    self._effects[tx_id] = effects = self._apply(
                        candidate, pending, tail.next_height(size)
                    )
                except InvalidTransaction as exc:
                    del self._entries[tx_id]
                    self._forget(tx_id, candidate)
                    dropped.append((tx_id, exc))
                    continue
            tail.add(size)
            for key, value in effects.writes.items():
                pending.put(key, value)
        self._tail = tail
        return dropped

    def _forget(self, tx_id: bytes, candidate: Candidate) -> None:
        """Drop the bookkeeping of a transaction no longer pending (its entry is gone)."""
        self._bytes -= len(candidate.tx_bytes)
        del self._effects[tx_id]
        document = self._document_of.pop(tx_id, None)
        if document is not None:
            del self._documents[document]
