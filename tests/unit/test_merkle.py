"""Tests of the RFC 6962 Merkle tree: roots, audit paths and their verification."""

import hashlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from danangchain.merkle import (
    compute_inclusion_proof,
    compute_leaf_hash,
    compute_merkle_root,
    compute_merkle_root_from_hashes,
    compute_root_from_proof,
    is_valid_inclusion_proof,
)

MAX_SIZE = 64


def reference_root(leaves: list[bytes]) -> bytes:
    """Compute MTH(D[n]) by the recursive definition of RFC 6962 §2.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    split = largest_power_of_two_below(len(leaves))
    left, right = reference_root(leaves[:split]), reference_root(leaves[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def reference_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """Compute PATH(m, D[n]) by the recursive definition of RFC 6962 §2.1.1."""
    if len(leaves) <= 1:
        return []
    split = largest_power_of_two_below(len(leaves))
    if index < split:
        return reference_path(index, leaves[:split]) + [reference_root(leaves[split:])]
    return reference_path(index - split, leaves[split:]) + [reference_root(leaves[:split])]


def reference_sides(index: int, size: int) -> list[str]:
    """List on which side each audit-path sibling sits, leaf upwards, per RFC 6962."""
    if size <= 1:
        return []
    split = largest_power_of_two_below(size)
    if index < split:
        return reference_sides(index, split) + ["right"]
    return reference_sides(index - split, size - split) + ["left"]


def largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def make_leaves(size: int) -> list[bytes]:
    """Return `size` distinct leaves."""
    return [f"transaction {i}".encode() for i in range(size)]


def flip_first_bit(value: bytes) -> bytes:
    """Return `value` with its first bit inverted."""
    return bytes([value[0] ^ 0x80]) + value[1:]


TREES = {size: make_leaves(size) for size in range(1, MAX_SIZE + 1)}
ROOTS = {size: compute_merkle_root(leaves) for size, leaves in TREES.items()}
PROOFS = {
    (size, index): compute_inclusion_proof(leaves, index)
    for size, leaves in TREES.items()
    for index in range(size)
}


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert compute_merkle_root([]) == hashlib.sha256(b"").digest()
    assert compute_merkle_root_from_hashes([]) == hashlib.sha256(b"").digest()


def test_single_leaf_root_is_its_leaf_hash() -> None:
    assert compute_merkle_root([b"x"]) == hashlib.sha256(b"\x00x").digest()
    assert compute_leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


@pytest.mark.parametrize("size", [2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 100])
def test_root_matches_recursive_reference(size: int) -> None:
    leaves = make_leaves(size)
    assert compute_merkle_root(leaves) == reference_root(leaves)


def test_root_from_hashes_matches_root_from_leaves() -> None:
    leaves = make_leaves(11)
    hashes = [compute_leaf_hash(leaf) for leaf in leaves]
    assert compute_merkle_root_from_hashes(hashes) == compute_merkle_root(leaves)


def test_root_from_hashes_rejects_a_hash_of_wrong_size() -> None:
    with pytest.raises(ValueError, match="leaf hash 1 is 31 bytes"):
        compute_merkle_root_from_hashes([bytes(32), bytes(31)])


def test_odd_leaf_is_not_duplicated() -> None:
    # CVE-2012-2459: Bitcoin's tree gives [a, b, c] and [a, b, c, c] the same root.
    assert compute_merkle_root([b"a", b"b", b"c"]) != compute_merkle_root([b"a", b"b", b"c", b"c"])


def test_leaf_cannot_pass_for_an_inner_node() -> None:
    left, right = compute_leaf_hash(b"a"), compute_leaf_hash(b"b")
    forged_leaf = left + right
    assert len(forged_leaf) == 64
    assert compute_merkle_root([forged_leaf]) != compute_merkle_root([b"a", b"b"])


def test_proof_matches_recursive_reference_path() -> None:
    for size in (1, 2, 3, 5, 6, 7, 8, 12, 21, 64):
        for index in range(size):
            assert list(PROOFS[size, index]) == reference_path(index, TREES[size])


def test_every_proof_verifies_for_sizes_1_to_64() -> None:
    for (size, index), proof in PROOFS.items():
        leaf = TREES[size][index]
        assert compute_root_from_proof(leaf, index, size, proof) == ROOTS[size]
        assert is_valid_inclusion_proof(leaf, index, size, proof, ROOTS[size])


def test_proof_with_any_element_changed_fails() -> None:
    for (size, index), proof in PROOFS.items():
        for position in range(len(proof)):
            tampered = list(proof)
            tampered[position] = flip_first_bit(tampered[position])
            assert not is_valid_inclusion_proof(
                TREES[size][index], index, size, tampered, ROOTS[size]
            )


def test_proof_for_another_leaf_fails() -> None:
    for (size, index), proof in PROOFS.items():
        assert not is_valid_inclusion_proof(b"not in the tree", index, size, proof, ROOTS[size])


def test_proof_with_wrong_index_fails() -> None:
    for (size, index), proof in PROOFS.items():
        leaf = TREES[size][index]
        for wrong_index in range(-1, size + 2):
            if wrong_index != index:
                assert not is_valid_inclusion_proof(leaf, wrong_index, size, proof, ROOTS[size])


def test_proof_with_wrong_size_fails_when_the_path_differs() -> None:
    for (size, index), proof in PROOFS.items():
        if size > 32:
            continue
        leaf = TREES[size][index]
        for wrong_size in range(0, MAX_SIZE + 1):
            if wrong_size == size:
                continue
            same_path = index < wrong_size and reference_sides(index, wrong_size) == (
                reference_sides(index, size)
            )
            valid = is_valid_inclusion_proof(leaf, index, wrong_size, proof, ROOTS[size])
            assert valid == same_path, (size, index, wrong_size)


def test_size_is_bound_only_by_the_root() -> None:
    # A proof checks the leaf's path, and the last leaf of 3 has the same path as the
    # last of 2: whoever trusts the index must take the size from a signed header.
    leaves = make_leaves(3)
    proof = compute_inclusion_proof(leaves, 2)
    assert is_valid_inclusion_proof(leaves[2], 1, 2, proof, compute_merkle_root(leaves))


def test_proof_with_extra_or_missing_element_fails() -> None:
    extra = compute_leaf_hash(b"extra")
    for (size, index), proof in PROOFS.items():
        leaf, root = TREES[size][index], ROOTS[size]
        for position in range(len(proof) + 1):
            longer = [*proof[:position], extra, *proof[position:]]
            assert not is_valid_inclusion_proof(leaf, index, size, longer, root)
        for position in range(len(proof)):
            shorter = [*proof[:position], *proof[position + 1 :]]
            assert not is_valid_inclusion_proof(leaf, index, size, shorter, root)


def test_malformed_proof_raises_value_error() -> None:
    leaves = make_leaves(5)
    proof = compute_inclusion_proof(leaves, 1)
    with pytest.raises(ValueError, match="too few"):
        compute_root_from_proof(leaves[1], 1, 5, proof[:-1])
    with pytest.raises(ValueError, match="too many"):
        compute_root_from_proof(leaves[1], 1, 5, [*proof, proof[0]])
    with pytest.raises(ValueError, match="outside a tree of 5"):
        compute_root_from_proof(leaves[1], 5, 5, proof)
    with pytest.raises(ValueError, match="outside a tree of 0"):
        compute_root_from_proof(leaves[1], 0, 0, [])
    with pytest.raises(ValueError, match="proof element 0 is 33 bytes"):
        compute_root_from_proof(leaves[1], 1, 5, [bytes(33), *proof[1:]])


def test_inclusion_proof_index_out_of_range_raises_index_error() -> None:
    leaves = make_leaves(4)
    for index in (-1, 4, 100):
        with pytest.raises(IndexError):
            compute_inclusion_proof(leaves, index)
    with pytest.raises(IndexError):
        compute_inclusion_proof([], 0)


def test_single_leaf_tree_has_empty_proof() -> None:
    assert compute_inclusion_proof([b"only"], 0) == ()
    assert is_valid_inclusion_proof(b"only", 0, 1, [], compute_merkle_root([b"only"]))


def test_root_over_5000_leaves_is_fast() -> None:
    leaves = make_leaves(5000)
    started = time.perf_counter()
    root = compute_merkle_root(leaves)
    proof = compute_inclusion_proof(leaves, 4321)
    elapsed = time.perf_counter() - started
    assert is_valid_inclusion_proof(leaves[4321], 4321, 5000, proof, root)
    assert elapsed < 0.5


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=80), st.data())
def test_random_trees_match_reference_and_prove_membership(
    leaves: list[bytes], data: st.DataObject
) -> None:
    root = compute_merkle_root(leaves)
    assert root == reference_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = compute_inclusion_proof(leaves, index)
    assert len(proof) == len(reference_sides(index, len(leaves)))
    assert is_valid_inclusion_proof(leaves[index], index, len(leaves), proof, root)
