"""The exact bytes every signature covers: one place, each with its domain and the chain id.

Like CometBFT's types/canonical.go, this module is the only definition of what a key
signs. Each sign-bytes array starts with a fixed domain tag and the chain id, so a
signature made for one purpose or one network can never be replayed for another. The
bytes are stored and checked by every node and auditor: change none of them without a
new domain version.
"""

from __future__ import annotations

import hashlib
from typing import Any

from danangchain.encoding import pack

DOMAIN_TX = "danangchain/tx/v1"
DOMAIN_VOTE = "danangchain/vote/v1"
DOMAIN_PROPOSAL = "danangchain/proposal/v1"
DOMAIN_PEER = "danangchain/peer/v1"
DOMAIN_NODE_CARD = "danangchain/node-card/v1"
DOMAIN_CHECKPOINT = "danangchain/checkpoint/v1"
DOMAIN_READ = "danangchain/read/v1"


def compute_tx_signing_bytes(
    chain_id: str, sender: bytes, nonce: int, kind: str, body_fields: list[Any]
) -> bytes:
    """Return the bytes a sender signs: everything in a transaction but the signature."""
    return pack([DOMAIN_TX, chain_id, sender, nonce, kind, body_fields])


def compute_vote_signing_bytes(
    chain_id: str, vote_type: str, height: int, round_: int, block_hash: bytes | None
) -> bytes:
    """Return the bytes a validator signs for a prevote or precommit (None: nil)."""
    return pack([DOMAIN_VOTE, chain_id, vote_type, height, round_, block_hash])


def compute_proposal_signing_bytes(
    chain_id: str, height: int, round_: int, block_hash: bytes, valid_round: int
) -> bytes:
    """Return the bytes a proposer signs for its proposal of a block."""
    return pack([DOMAIN_PROPOSAL, chain_id, height, round_, block_hash, valid_round])


def compute_peer_signing_bytes(
    chain_id: str, method: str, path: str, time_ms: int, body: bytes
) -> bytes:
    """Return the bytes a node signs for one request to a peer (the body by its digest)."""
    digest = hashlib.sha256(body).digest()
    return pack([DOMAIN_PEER, chain_id, method, path, time_ms, digest])


def compute_node_card_signing_bytes(
    name: str, public_key: bytes, p2p_urls: list[str], tls_certificate: bytes | None
) -> bytes:
    """Return the bytes a node signs for its card: who it is and where it is reached.

    The one signed array without a chain id: an organisation makes its card before any
    chain exists. A card only claims "this key is reached here"; the genesis and the
    transactions that carry it into a chain are signed with that chain's id."""
    return pack([DOMAIN_NODE_CARD, name, public_key, p2p_urls, tls_certificate])


def compute_checkpoint_signing_bytes(
    chain_id: str, height: int, block_hash: bytes, state_root: bytes
) -> bytes:
    """Return the bytes a witness cosigns: this chain's block at a height and its state root."""
    return pack([DOMAIN_CHECKPOINT, chain_id, height, block_hash, state_root])


def compute_read_signing_bytes(
    chain_id: str, method: str, path: str, time_ms: int, nonce: bytes
) -> bytes:
    """Return the bytes a member signs to read its data through a node's client API: the
    request (method, and path with its query) at a time, with a nonce that makes it one."""
    return pack([DOMAIN_READ, chain_id, method, path, time_ms, nonce])
