"""What a node offers its peers whatever its engine: admission, certified blocks for
sync, and transactions gossiped to it. The consensus driver adds consensus messages; a
single validator refuses those but still serves followers (full nodes) its chain."""

from __future__ import annotations

from collections.abc import Callable

from danangchain.ledger import get_last_validator_set, get_next_validator_set, get_validator_set
from danangchain.validators import encode_certificate
from node.chain.ledger import NodeLedger
from node.p2p.transport import PeerServer


class PeerAccess:
    """Who may call the peer routes: the validators of the last, current and upcoming sets,
    and the peers the operator configured. Refresh after each commit."""

    def __init__(self, ledger: NodeLedger, allowed_peers: frozenset[bytes]) -> None:
        self.ledger = ledger
        self.allowed_peers = allowed_peers
        self.keys: frozenset[bytes] = frozenset()
        self.refresh()

    def __call__(self, key: bytes) -> bool:
        return key in self.keys

    def refresh(self) -> None:
        """Read the validator sets again from committed state."""
        state = self.ledger.store.state
        keys = set(self.allowed_peers)
        for validator_set in (
            get_last_validator_set(state),
            get_validator_set(state),
            get_next_validator_set(state),
        ):
            keys.update(v.public_key for v in validator_set.validators)
        self.keys = frozenset(keys)


def create_peer_server(
    ledger: NodeLedger, access: PeerAccess, on_messages: Callable[[list[bytes]], None]
) -> PeerServer:
    """Return the peer routes of a node whose consensus messages go to `on_messages`."""
    return PeerServer(
        ledger.chain_id,
        access,
        ledger.counters,
        on_messages,
        lambda batch: submit_gossiped(ledger, batch),
        lambda: ledger.tip.height,
        lambda height: read_certified_block(ledger, height),
    )


def submit_gossiped(ledger: NodeLedger, batch: list[bytes]) -> None:
    """Admit transactions a peer passed on; a bad one is only counted."""
    for tx_bytes in batch:
        try:
            ledger.submit(tx_bytes, from_peer=True)
        except Exception as exc:  # noqa: BLE001 - a peer's bad transaction is only counted
            what = f"gossiped tx refused: {getattr(exc, 'code', type(exc).__name__)}"
            ledger.counters[what] = ledger.counters.get(what, 0) + 1


def read_certified_block(ledger: NodeLedger, height: int) -> tuple[bytes, bytes] | None:
    """Return a committed block's bytes and its certificate's, for a peer that syncs."""
    block = ledger.store.get_block_bytes(height)
    certificate = ledger.store.get_certificate(height)
    if block is None or certificate is None:
        return None
    return block, encode_certificate(certificate)
