"""Anchored datasets: the entry tree, manifests, and the proof of one file or reading."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from danangchain.dataset import (
    DATASET_LEAF_TAG,
    DatasetEntry,
    DatasetError,
    FileProof,
    Manifest,
    check_entry_path,
    check_file_proof,
    compute_dataset_root,
    compute_entry_path,
    decode_file_proof_json,
    decode_manifest_json,
    encode_entry_leaf,
    encode_file_proof_json,
    encode_manifest_json,
    find_entry_by_path,
    make_dataset_manifest,
    make_file_proof,
    make_stream_manifest,
    normalise_path,
    verify_file_matches,
)
from danangchain.encoding import unpack
from danangchain.errors import DecodeError, InvalidTransaction
from danangchain.merkle import compute_leaf_hash, compute_node_hash, is_valid_inclusion_proof
from danangchain.proof import InvalidProof, make_inclusion_proof
from danangchain.transaction import (
    AnchorBody,
    RecordBody,
    decode_transaction,
    encode_transaction,
)
from tests.unit.ledger_fixtures import (
    BUSINESS_SEED,
    LocalChain,
    make_key,
    make_local_chain,
    sign_next,
)

business = make_key(BUSINESS_SEED)


def entry(path: str, content: bytes = b"") -> DatasetEntry:
    return DatasetEntry(path, len(content), hashlib.sha256(content or path.encode()).digest())


# Paths

segments = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")),
    min_size=1,
    max_size=8,
).filter(lambda part: part not in (".", "..") and "/" not in part and "\\" not in part)


@given(st.lists(segments, min_size=1, max_size=4))
def test_a_normalised_path_is_accepted_as_it_is(parts: list[str]) -> None:
    path = normalise_path(parts)
    check_entry_path(path)
    assert normalise_path(path.split("/")) == path


@pytest.mark.parametrize(
    "path",
    ["", "/etc/passwd", "a//b", "a/./b", "../a", "a/..", "a\\b", "a\nb", "cafe\u0301.txt", "a/"],
)
def test_invalid_paths_are_refused(path: str) -> None:
    with pytest.raises(DatasetError):
        check_entry_path(path)


def test_a_decomposed_name_is_normalised_to_nfc() -> None:
    assert normalise_path(["d\u00e2y", "cafe\u0301.txt"]) == "d\u00e2y/caf\u00e9.txt"


# The tree


def test_a_dataset_leaf_is_a_tagged_array_never_a_transaction() -> None:
    leaf = encode_entry_leaf(entry("a.csv", b"x"))
    assert unpack(leaf) == [DATASET_LEAF_TAG, "a.csv", 1, hashlib.sha256(b"x").digest()]
    with pytest.raises(InvalidTransaction, match="expected 7 fields"):
        decode_transaction(leaf)
    root = compute_dataset_root([entry("a.csv", b"x")])
    assert root == compute_leaf_hash(leaf) != compute_node_hash(leaf[:32], leaf[32:64])


path_sets = st.lists(
    st.lists(segments, min_size=1, max_size=3).map(normalise_path),
    min_size=1,
    max_size=40,
    unique=True,
)


@settings(max_examples=60, deadline=None)
@given(path_sets, st.data())
def test_every_entry_proves_and_any_change_rename_or_move_fails(
    paths: list[str], data: st.DataObject
) -> None:
    manifest = make_dataset_manifest("set", "dataset", [entry(p) for p in paths])
    count = len(manifest.entries)
    index = data.draw(st.integers(0, count - 1))
    chosen = manifest.entries[index]
    path = compute_entry_path(manifest.entries, index)
    assert is_valid_inclusion_proof(encode_entry_leaf(chosen), index, count, path, manifest.root)
    changed = [
        replace(chosen, digest=hashlib.sha256(chosen.digest).digest()),
        replace(chosen, size=chosen.size + 1),
        replace(chosen, path=chosen.path + "x"),
    ]
    for other in changed:
        assert not is_valid_inclusion_proof(
            encode_entry_leaf(other), index, count, path, manifest.root
        )
    if count > 1:
        moved = data.draw(st.integers(0, count - 1).filter(lambda i: i != index))
        assert not is_valid_inclusion_proof(
            encode_entry_leaf(chosen), moved, count, path, manifest.root
        )


@given(path_sets, st.randoms())
def test_the_root_does_not_depend_on_the_order_the_files_were_found(
    paths: list[str], random: object
) -> None:
    shuffled = list(paths)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    first = make_dataset_manifest("set", "dataset", [entry(p) for p in paths])
    second = make_dataset_manifest("set", "dataset", [entry(p) for p in shuffled])
    assert first.root == second.root and first.entries == second.entries


def test_two_files_with_one_path_are_refused() -> None:
    with pytest.raises(DatasetError, match="two files have the path a.csv"):
        make_dataset_manifest("set", "dataset", [entry("a.csv", b"1"), entry("a.csv", b"2")])


def test_the_entry_of_a_file_is_the_longest_path_it_ends_with() -> None:
    manifest = make_dataset_manifest("set", "dataset", [entry("a.csv"), entry("2026/a.csv")])
    by_path = {e.path: i for i, e in enumerate(manifest.entries)}
    assert find_entry_by_path(manifest, ("/", "data", "2026", "a.csv")) == by_path["2026/a.csv"]
    assert find_entry_by_path(manifest, ("/", "data", "a.csv")) == by_path["a.csv"]
    assert find_entry_by_path(manifest, ("/", "data", "b.csv")) is None


# Manifests


def test_a_manifest_survives_its_json_file() -> None:
    manifest = make_dataset_manifest("Dữ liệu", "dataset", [entry("b"), entry("a/ö.csv", b"1")])
    named = replace(manifest, chain_id="c", tx_id=bytes(32))
    assert decode_manifest_json(encode_manifest_json(named)) == named


def test_a_stream_manifest_names_readings_by_index_and_keeps_them() -> None:
    readings = [b"21.5", b"21.5", b"\x00\xff"]
    manifest = make_stream_manifest("sensor-7", "iot", readings, 10_000, 20_000)
    assert [e.path for e in manifest.entries] == ["0", "1", "2"]
    assert manifest.body() == AnchorBody("sensor-7", "iot", manifest.root, 3, 10, 10_000, 20_000)
    assert decode_manifest_json(encode_manifest_json(manifest)) == manifest


def edited_manifest(manifest: Manifest, change: dict[str, object], row: int | None = None) -> str:
    document = json.loads(encode_manifest_json(manifest))
    target = document if row is None else document["entries"][row]
    target.update(change)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("change", "row", "reason"),
    [
        ({"sha256": "00" * 32}, 0, "root"),
        ({"size": 99}, 0, "root"),
        ({"path": "z"}, 0, "sorted"),
        ({"path": "../a"}, 0, "not a normal relative path"),
        ({"root": "00" * 32}, None, "root"),
        ({"file_count": 3}, None, "file_count"),
        ({"total_bytes": 0}, None, "total_bytes"),
        ({"category": "poems"}, None, "category"),
        ({"name": "a/b"}, None, "name"),
        ({"format": "other"}, None, "not a DanangChain anchor manifest"),
        ({"window_start_ms": 5}, None, "malformed"),
    ],
)
def test_a_manifest_that_disagrees_with_itself_is_refused(
    change: dict[str, object], row: int | None, reason: str
) -> None:
    manifest = make_dataset_manifest("set", "dataset", [entry("a", b"1"), entry("b", b"22")])
    with pytest.raises(DecodeError, match=reason):
        decode_manifest_json(edited_manifest(manifest, change, row))


def test_a_stream_manifest_whose_reading_changed_is_refused() -> None:
    manifest = make_stream_manifest("sensor-7", "iot", [b"1", b"2"], 0, 1000)
    with pytest.raises(DecodeError, match="reading"):
        decode_manifest_json(edited_manifest(manifest, {"reading": b"3".hex()}, 1))


# Anchor transactions


def test_an_anchor_body_round_trips_and_keeps_other_kinds_unchanged() -> None:
    body = AnchorBody("air-2026", "dataset", bytes(range(32)), 10_000, 5 << 30)
    tx = sign_next(make_local_chain().state, business, body)
    assert decode_transaction(encode_transaction(tx)) == tx
    assert tx.kind == "anchor"
    record = sign_next(make_local_chain().state, business, RecordBody("invoice", bytes(32)))
    assert decode_transaction(encode_transaction(record)) == record


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (AnchorBody("a", "poems", bytes(32), 1, 1), "category"),
        (AnchorBody("", "dataset", bytes(32), 1, 1), "name"),
        (AnchorBody("a/b", "dataset", bytes(32), 1, 1), "name"),
        (AnchorBody("a\tb", "dataset", bytes(32), 1, 1), "name"),
        (AnchorBody("a", "dataset", bytes(31), 1, 1), "root"),
        (AnchorBody("a", "dataset", bytes(32), 0, 1), "file_count"),
        (AnchorBody("a", "iot", bytes(32), 1, 1, 5, None), "window"),
        (AnchorBody("a", "iot", bytes(32), 1, 1, 5, 5), "window_end_ms"),
    ],
)
def test_invalid_anchor_bodies_are_refused_when_decoded(body: AnchorBody, reason: str) -> None:
    tx = sign_next(make_local_chain().state, business, body)
    with pytest.raises(InvalidTransaction, match=reason) as info:
        decode_transaction(encode_transaction(tx))
    assert info.value.code == "bad_encoding"


# File proofs


def anchored(manifest: Manifest) -> tuple[LocalChain, FileProof]:
    """Commit the manifest's anchor in a chain; return the chain and the proof of entry 1."""
    chain = make_local_chain(members=[(business, "business")])
    chain.commit([sign_next(chain.state, business, manifest.body())])
    block = chain.blocks[-1]
    inclusion = make_inclusion_proof(chain.genesis, block, 0, chain.certificates[-1])
    return chain, make_file_proof(manifest, 1, inclusion)


def dataset() -> Manifest:
    files = [entry("a.csv", b"alpha"), entry("sub/b.csv", b"beta"), entry("c.csv", b"gamma")]
    return make_dataset_manifest("air-2026", "dataset", files)


def test_a_file_proof_checks_and_survives_its_json_file() -> None:
    manifest = dataset()
    chain, proof = anchored(manifest)
    proven = check_file_proof(proof, chain.genesis.hash)
    assert proven.entry == manifest.entries[1] and proven.anchor == manifest.body()
    assert proven.inclusion.height == 1
    assert decode_file_proof_json(encode_file_proof_json(proof)) == proof
    verify_file_matches(proven, proof.entry.size, proof.entry.digest, ("/", "x", "c.csv"))


def test_a_file_proof_for_another_chain_is_invalid() -> None:
    chain, proof = anchored(dataset())
    with pytest.raises(InvalidProof, match="genesis"):
        check_file_proof(proof, bytes(32))


@pytest.mark.parametrize(
    "change",
    [
        {"index": 0},
        {"index": 2},
        {"entry": DatasetEntry("c.csv", 5, bytes(32))},
        {"entry": DatasetEntry("d.csv", 5, hashlib.sha256(b"gamma").digest())},
        {"dataset_path": ()},
    ],
)
def test_a_file_proof_with_another_entry_place_or_path_is_invalid(
    change: dict[str, object],
) -> None:
    chain, proof = anchored(dataset())
    with pytest.raises(InvalidProof, match="dataset path"):
        check_file_proof(replace(proof, **change), chain.genesis.hash)  # type: ignore[arg-type]


def test_a_changed_or_renamed_file_does_not_match_its_proof() -> None:
    chain, proof = anchored(dataset())
    proven = check_file_proof(proof, chain.genesis.hash)
    digest = hashlib.sha256(b"gammA").digest()
    with pytest.raises(InvalidProof, match="content"):
        verify_file_matches(proven, 5, digest, ("c.csv",))
    with pytest.raises(InvalidProof, match="anchored as 'c.csv'"):
        verify_file_matches(proven, 5, proof.entry.digest, ("/", "x", "d.csv"))


def test_the_proof_of_a_record_is_not_a_file_proof() -> None:
    chain = make_local_chain(members=[(business, "business")])
    chain.commit([sign_next(chain.state, business, RecordBody("invoice", bytes(32)))])
    inclusion = make_inclusion_proof(chain.genesis, chain.blocks[-1], 0, chain.certificates[-1])
    proof = make_file_proof(dataset(), 0, inclusion)
    with pytest.raises(InvalidProof, match="not an anchor"):
        check_file_proof(proof, chain.genesis.hash)


def test_a_reading_proof_checks_its_index_and_content_not_a_file_name() -> None:
    manifest = make_stream_manifest("sensor-7", "iot", [b"20.5", b"21.0", b"21.0"], 0, 10_000)
    chain, proof = anchored(manifest)
    proven = check_file_proof(proof, chain.genesis.hash)
    verify_file_matches(proven, 4, hashlib.sha256(b"21.0").digest(), ("any", "name"))
    # Reading 2 has the same content as reading 1, but a proof names its place.
    with pytest.raises(InvalidProof):
        check_file_proof(replace(proof, index=2), chain.genesis.hash)
    with pytest.raises(InvalidProof, match="named by its index"):
        check_file_proof(replace(proof, entry=replace(proof.entry, path="2")), chain.genesis.hash)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"format": "danangchain/inclusion-proof"}, "not a DanangChain file proof"),
        ({"version": 9}, "version"),
        ({"tx_id": "00" * 32}, "tx_id"),
        ({"dataset_path": ["zz"]}, "hex"),
        ({"index": -1}, "index"),
        ({"entry": {"path": "c.csv"}}, "malformed"),
    ],
)
def test_a_malformed_file_proof_document_is_refused(change: dict[str, object], reason: str) -> None:
    _chain, proof = anchored(dataset())
    document = json.loads(encode_file_proof_json(proof))
    document.update(change)
    with pytest.raises(DecodeError, match=reason):
        decode_file_proof_json(json.dumps(document))
