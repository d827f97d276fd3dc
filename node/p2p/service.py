"""What a node offers its peers: admission, certified blocks for sync, transactions
gossiped to it, and consensus messages for the driver."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence

from danangchain.registry import NodeEntry
from danangchain.sealing import decode_gossip
from danangchain.state import (
    KEY_LAST_VALIDATORS,
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    PREFIX_NODE,
)
from node.chain.events import BlockCommitted
from node.chain.ledger import NodeLedger
from node.p2p.transport import PeerServer

Registry = Sequence[tuple[bytes, NodeEntry]]


def changes_registry(writes: Mapping[bytes, bytes | None]) -> bool:
    """Tell whether a block's state writes change the node registry."""
    return any(key.startswith(PREFIX_NODE) for key in writes)


def changes_peer_access(writes: Mapping[bytes, bytes | None]) -> bool:
    """Tell whether a block's state writes change who may call the peer routes: the
    registry, or one of the three validator sets (written only when they change)."""
    sets = (KEY_LAST_VALIDATORS, KEY_VALIDATORS, KEY_NEXT_VALIDATORS)
    return changes_registry(writes) or any(key in writes for key in sets)


def compute_peer_urls(nodes: Registry, own_key: bytes, bootstrap: Sequence[str]) -> dict[str, str]:
    """Return the peers to dial, by id: every other node of the registry (its first peer
    URL, by its key), or, while the registry names none, the bootstrap URLs."""
    dialed = {
        key.hex(): entry.p2p_urls[0] for key, entry in nodes if key != own_key and entry.p2p_urls
    }
    if dialed:
        return dialed
    return {f"bootstrap {url}": url for url in bootstrap}


def registry_certificates(nodes: Registry) -> list[bytes]:
    """Return the TLS certificates (PEM) of every node of the registry."""
    return [e.tls_certificate for _, e in nodes if e.tls_certificate is not None]


def to_der(certificates: list[bytes]) -> frozenset[bytes]:
    """Return PEM certificates in the DER form a TLS connection reports; skip bad ones."""
    found = set()
    for pem in certificates:
        try:
            found.add(ssl.PEM_cert_to_DER_cert(pem.decode("ascii")))
        except (ValueError, UnicodeDecodeError):
            continue
    return frozenset(found)


class PeerAccess:
    """Who may call the peer routes: every node of the registry, the validators of the
    last, current and upcoming sets (a genesis without cards has no registry), and the
    keys the operator allowed in config. Read again after every commit that changes them,
    so a node removed from the registry is refused from the next block on."""

    def __init__(self, ledger: NodeLedger, allowed_peers: frozenset[bytes]) -> None:
        self.ledger = ledger
        self.allowed_peers = allowed_peers
        self.keys: frozenset[bytes] = frozenset()
        self.refresh()
        self.unsubscribe = ledger.committed.subscribe(self.on_block_committed)

    def __call__(self, key: bytes) -> bool:
        return key in self.keys

    def on_block_committed(self, event: BlockCommitted) -> None:
        """Read the registry and the sets again if the block changed them."""
        if changes_peer_access(event.result.writes):
            self.refresh()

    def refresh(self) -> None:
        """Read the validator sets again from committed state."""
        keys = set(self.allowed_peers)
        keys.update(key for key, _ in self.ledger.reads.nodes())
        for validator_set in self.ledger.reads.validator_sets_around_tip():
            keys.update(v.public_key for v in validator_set.validators)
        self.keys = frozenset(keys)


def create_peer_server(
    ledger: NodeLedger,
    access: PeerAccess,
    on_messages: Callable[[list[bytes]], None],
    is_registered_certificate: Callable[[bytes | None], bool] | None = None,
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
        is_registered_certificate,
    )


async def submit_gossiped(ledger: NodeLedger, batch: list[bytes]) -> None:
    """Admit transactions a peer passed on; a bad one is only counted."""

    def admit(tx_bytes: bytes, sealed: bytes | None) -> None:
        try:
            ledger.submit(tx_bytes, from_peer=True, sealed=sealed)
        except Exception as exc:  # noqa: BLE001 - a peer's bad transaction is only counted
            code = getattr(exc, "code", type(exc).__name__)
            ledger.count(f"gossiped tx refused: {code}")

    # One write for the batch's sealed content (a peer's transactions themselves are kept
    # by the peer that accepted them).
    await ledger.admit_batch([decode_gossip(item) for item in batch], admit)
