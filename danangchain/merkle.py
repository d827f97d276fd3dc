"""Merkle trees over a block's transactions, as RFC 6962 / RFC 9162 define them.

The tree is the left-balanced one of RFC 6962 §2.1: a list of n > 1 leaves splits at
the largest power of two k < n. Leaves and inner nodes hash under different one-byte
prefixes, so a leaf can never pass for an inner node, and an odd node is promoted to
the next level instead of being paired with a copy of itself (the duplication that
let two different transaction lists share a root in CVE-2012-2459).
"""

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def compute_leaf_hash(data: bytes) -> bytes:
    """Return the hash of one leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def compute_node_hash(left: bytes, right: bytes) -> bytes:
    """Return the hash of an inner node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def compute_merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the root of the tree whose leaves are the given raw data."""
    return compute_merkle_root_from_hashes([compute_leaf_hash(leaf) for leaf in leaves])


def compute_merkle_root_from_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the root of the tree whose leaves have the given hashes."""
    _verify_hash_sizes(leaf_hashes, "leaf hash")
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    return _compute_levels(list(leaf_hashes))[-1][0]


def compute_inclusion_proof(leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """Return the audit path of leaf `index`, nearest sibling first (RFC 6962 PATH)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    levels = _compute_levels([compute_leaf_hash(leaf) for leaf in leaves])
    path: list[bytes] = []
    position = index
    for level in levels[:-1]:
        sibling = position ^ 1
        # The last node of an odd level has no sibling: it rises unchanged, adding nothing.
        if sibling < len(level):
            path.append(level[sibling])
        position //= 2
    return tuple(path)


def compute_root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Return the root that `proof` implies for `leaf` at `index` in a tree of `size` leaves."""
    # Verify the proof is well formed before hashing anything (RFC 9162 §2.1.3.2 step 1).
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    _verify_hash_sizes(proof, "proof element")
    node_index, last_index = index, size - 1
    root = compute_leaf_hash(leaf)
    for sibling in proof:
        if last_index == 0:
            raise ValueError(f"proof has {len(proof)} elements, too many for this tree")
        if node_index & 1 or node_index == last_index:
            root = compute_node_hash(sibling, root)
            # Skip the levels where this node was the unpaired last one and rose unchanged.
            while node_index & 1 == 0 and node_index != 0:
                node_index, last_index = node_index >> 1, last_index >> 1
        else:
            root = compute_node_hash(root, sibling)
        node_index, last_index = node_index >> 1, last_index >> 1
    if last_index != 0:
        raise ValueError(f"proof has {len(proof)} elements, too few for this tree")
    return root


def is_valid_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return whether `proof` shows `leaf` at `index` in the tree of `size` leaves with `root`."""
    try:
        return compute_root_from_proof(leaf, index, size, proof) == root
    except ValueError:
        return False


def _compute_levels(leaf_hashes: list[bytes]) -> list[list[bytes]]:
    """Return every level of the tree, leaf hashes first and the root alone last."""
    # Pairing neighbours bottom-up and promoting an odd last node yields exactly the
    # RFC 6962 split-at-largest-power-of-two tree, in O(n) time without recursion.
    levels = [leaf_hashes]
    while len(levels[-1]) > 1:
        level = levels[-1]
        parents = [compute_node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            parents.append(level[-1])
        levels.append(parents)
    return levels


def _verify_hash_sizes(hashes: Sequence[bytes], what: str) -> None:
    """Raise ValueError unless every element is a 32-byte hash."""
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise ValueError(f"{what} {position} is {len(value)} bytes, expected {HASH_SIZE}")
