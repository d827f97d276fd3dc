"""The mempool: transactions admitted once (signature checked once), bounded, in order.

Admission applies each transaction to a pending view (committed state plus every
pending transaction), so a client hears at once about any rule it breaks, nonces are
counted across pending transactions, and the proposer's block rarely drops anything.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from danangchain.errors import InvalidTransaction
from danangchain.ledger import Candidate
from danangchain.rules import apply_transaction
from danangchain.state import StateReader, StateView
from danangchain.transaction import verify_transaction_signature


class MempoolFull(Exception):
    """The mempool holds as many transactions or bytes as it may."""


class Mempool:
    """Pending transactions in admission order, with their combined effect on state."""

    def __init__(self, chain_id: str, max_txs: int, max_bytes: int) -> None:
        self.chain_id = chain_id
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, Candidate] = OrderedDict()
        self._bytes = 0
        self._pending: StateView | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._entries

    def candidates(self, limit: int) -> list[Candidate]:
        """Return up to `limit` pending transactions, oldest first."""
        result = []
        for candidate in self._entries.values():
            if len(result) >= limit:
                break
            result.append(candidate)
        return result

    def pending_view(self, state: StateReader) -> StateView:
        """Return the view of committed state with every pending transaction applied."""
        if self._pending is None:
            self._pending = StateView(state)
        return self._pending

    def admit(self, candidate: Candidate, state: StateReader, next_height: int) -> None:
        """Check a transaction against state plus pending ones and keep it; raise if refused."""
        if candidate.tx_id in self._entries:
            raise InvalidTransaction("transaction is already pending", "duplicate")
        if (
            len(self._entries) >= self.max_txs
            or self._bytes + len(candidate.tx_bytes) > self.max_bytes
        ):
            raise MempoolFull(f"mempool is full ({len(self._entries)} transactions)")
        attempt = self.pending_view(state).fork()
        apply_transaction(
            attempt,
            candidate.tx,
            candidate.tx_id,
            self.chain_id,
            next_height,
            verify_signature=False,
        )
        # Verify the signature last: it is the costly check, and done once per node.
        verify_transaction_signature(candidate.tx)
        pending = self.pending_view(state)
        for key, value in attempt.writes.items():
            pending.put(key, value)
        self._entries[candidate.tx_id] = candidate
        self._bytes += len(candidate.tx_bytes)

    def remove(
        self, tx_ids: Sequence[bytes], state: StateReader, next_height: int
    ) -> list[tuple[bytes, InvalidTransaction]]:
        """Drop transactions (committed or refused), re-apply the rest to state; return drops."""
        for tx_id in tx_ids:
            candidate = self._entries.pop(tx_id, None)
            if candidate is not None:
                self._bytes -= len(candidate.tx_bytes)
        self._pending = StateView(state)
        dropped: list[tuple[bytes, InvalidTransaction]] = []
        for tx_id, candidate in list(self._entries.items()):
            attempt = self._pending.fork()
            try:
                apply_transaction(
                    attempt,
                    candidate.tx,
                    tx_id,
                    self.chain_id,
                    next_height,
                    verify_signature=False,
                )
            except InvalidTransaction as exc:
                del self._entries[tx_id]
                self._bytes -= len(candidate.tx_bytes)
                dropped.append((tx_id, exc))
                continue
            for key, value in attempt.writes.items():
                self._pending.put(key, value)
        return dropped
