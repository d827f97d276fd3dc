"""What the ledger tells the rest of the node: typed events, in the order they happen.

Metrics, the chain feed, peer access and the consensus driver subscribe here instead of
patching the ledger or the store; a subscriber never changes what the ledger does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from danangchain.ledger import BlockResult
from danangchain.validators import CommitCertificate

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class BlockCommitted:
    """A certified block is on disk: its result, its certificate, and the synced write's time."""

    result: BlockResult
    certificate: CommitCertificate
    write_seconds: float


@dataclass(frozen=True, slots=True)
class TxAdmitted:
    """A transaction entered the mempool: from one of this node's clients, or a peer."""

    tx_bytes: bytes
    tx_id: bytes
    from_peer: bool
    # A sealed record's encrypted content, which travels beside it (never in a block).
    sealed: bytes | None = None


class Subscribers(Generic[E]):
    """The handlers of one kind of event, told in the order they subscribed."""

    def __init__(self) -> None:
        self._handlers: list[Callable[[E], None]] = []

    def subscribe(self, handler: Callable[[E], None]) -> Callable[[], None]:
        """Add a handler; return the function that removes it again."""
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def publish(self, event: E) -> None:
        """Tell every handler of one event."""
        for handler in tuple(self._handlers):
            handler(event)
