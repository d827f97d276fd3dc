"""What a node offers its peers: admission, certified blocks for sync, transactions
gossiped to it, and consensus messages for the driver."""

from __future__ import annotations

from collections.abc import Callable

from node.chain.events import BlockCommitted
from node.chain.ledger import NodeLedger
from node.p2p.transport import PeerServer


class PeerAccess:
    """Who may call the peer routes: the validators of the last, current and upcoming sets,
    and the peers the operator configured. Refreshed by every commit."""

    def __init__(self, ledger: NodeLedger, allowed_peers: frozenset[bytes]) -> None:
        self.ledger = ledger
        self.allowed_peers = allowed_peers
        self.keys: frozenset[bytes] = frozenset()
        self.refresh()
        self.unsubscribe = ledger.committed.subscribe(self.on_block_committed)

    def __call__(self, key: bytes) -> bool:
        return key in self.keys

    def on_block_committed(self, event: BlockCommitted) -> None:
        """Read the sets again: a commit may have changed them."""
        self.refresh()

    def refresh(self) -> None:
        """Read the validator sets again from committed state."""
        keys = set(self.allowed_peers)
        for validator_set in self.ledger.reads.validator_sets_around_tip():
            keys.update(v.public_key for v in validator_set.validators)
        self.keys = frozenset(keys)


def create_peer_server(
    ledger: NodeLedger, access: PeerAccess, on_messages: Callable[[list[bytes]], None]
) -> PeerServer:
    """Return the peer routes of a node whose consensus messages go to `on_messages`."""
    return PeerServer(
        ledger.chain_id,
        access,
        ledger.signatures,
        ledger.counters,
        on_messages,
        lambda batch: submit_gossiped(ledger, batch),
        lambda: ledger.tip.height,
        ledger.reads.certified_block_bytes,
    )


def submit_gossiped(ledger: NodeLedger, batch: list[bytes]) -> None:
    """Admit transactions a peer passed on; a bad one is only counted."""
    for tx_bytes in batch:
        try:
            ledger.submit(tx_bytes, from_peer=True)
        except Exception as exc:  # noqa: BLE001 - a peer's bad transaction is only counted
            ledger.count(f"gossiped tx refused: {getattr(exc, 'code', type(exc).__name__)}")
