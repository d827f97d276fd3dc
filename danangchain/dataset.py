"""Anchored datasets: one Merkle root over many files' entries, and the proof of one file.

A dataset is a list of entries, one per file: its relative path, its size and the SHA-256
of its content. The tree over them is RFC 6962's (`merkle.py`), and each leaf is the
canonical msgpack array `["danangchain/dataset-entry/v1", path, size, sha256]`. A
transaction leaf is a signed transaction's bytes, an array of seven fields that opens
with the integer 1, so no dataset leaf can ever pass for a transaction leaf, and the
tree's own 0x00/0x01 prefixes keep either from passing for an inner node.

Paths are UTF-8 in Unicode NFC, '/'-separated, relative, with no empty, '.' or '..'
part: the same folder gives the same entries on every system. A dataset's entries are
sorted by the UTF-8 bytes of their paths, so the same files always give the same root.
A stream's window is a dataset whose entries are its readings in the order they came,
each named by its index ("0", "1", ...).

A file's proof is its entry, its index and Merkle path in the dataset, and the
inclusion proof (`proof.py`) of the anchor transaction that holds the dataset's root:
checked against a pinned genesis hash, it shows the entry was anchored no later than the
time of a block more than 2/3 of the validators signed.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from danangchain.encoding import pack
from danangchain.errors import DanangChainError, DecodeError
from danangchain.merkle import (
    compute_inclusion_proof,
    compute_merkle_root,
    is_valid_inclusion_proof,
)
from danangchain.proof import (
    InclusionProof,
    InvalidProof,
    ProvenInclusion,
    check_inclusion_proof,
    decode_proof_json,
    encode_proof_json,
)
from danangchain.transaction import (
    ANCHOR_CATEGORIES,
    HASH_SIZE,
    MAX_ANCHOR_FILE_COUNT,
    AnchorBody,
    check_anchor_name,
    compute_tx_id,
    decode_transaction,
)

DATASET_LEAF_TAG = "danangchain/dataset-entry/v1"
MANIFEST_FORMAT = "danangchain/anchor-manifest"
MANIFEST_VERSION = 1
FILE_PROOF_FORMAT = "danangchain/file-proof"
FILE_PROOF_VERSION = 1
MAX_PATH_SIZE = 4096
MAX_FILE_PROOF_SIZE = 2 * 1024 * 1024
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class DatasetError(DanangChainError):
    """Files that cannot form a dataset: a path that is not relative and normal, or twice."""

    code = "bad_dataset"


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """One file of a dataset (or one reading of a stream's window)."""

    path: str
    size: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Manifest:
    """Every entry of an anchored dataset or window, with what its anchor says of them."""

    name: str
    category: str
    entries: tuple[DatasetEntry, ...]
    root: bytes
    window_start_ms: int | None = None
    window_end_ms: int | None = None
    # A window's readings themselves, in order; None for a dataset of files.
    readings: tuple[bytes, ...] | None = None
    chain_id: str | None = None
    tx_id: bytes | None = None

    @property
    def is_stream(self) -> bool:
        """Tell whether this is a stream's window rather than a dataset of files."""
        return self.window_start_ms is not None

    @property
    def total_bytes(self) -> int:
        """Return the sum of the entries' sizes."""
        return sum(entry.size for entry in self.entries)

    def body(self) -> AnchorBody:
        """Return the anchor transaction's body for this manifest."""
        return AnchorBody(
            self.name,
            self.category,
            self.root,
            len(self.entries),
            self.total_bytes,
            self.window_start_ms,
            self.window_end_ms,
        )


@dataclass(frozen=True, slots=True)
class FileProof:
    """Everything needed to check offline that one file's entry was anchored."""

    entry: DatasetEntry
    index: int
    dataset_path: tuple[bytes, ...]
    inclusion: InclusionProof


@dataclass(frozen=True, slots=True)
class ProvenFile:
    """What a valid file proof establishes."""

    entry: DatasetEntry
    index: int
    anchor: AnchorBody
    inclusion: ProvenInclusion


# Entries, leaves and the tree


def normalise_path(parts: Sequence[str]) -> str:
    """Return the entry path of a file's relative path parts, or raise DatasetError."""
    path = "/".join(unicodedata.normalize("NFC", part) for part in parts)
    check_entry_path(path)
    return path


def check_entry_path(path: str) -> None:
    """Raise DatasetError unless a path is relative, '/'-separated, NFC and normal."""
    if not path or len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_SIZE:
        raise DatasetError.of("a file's path is 1 to {limit} bytes", limit=MAX_PATH_SIZE)
    parts = path.split("/")
    if (
        any(part in ("", ".", "..") for part in parts)
        or "\\" in path
        # Control characters, and the surrogates a name that is not UTF-8 decodes to.
        or any(unicodedata.category(char) in ("Cc", "Cs") for char in path)
        or unicodedata.normalize("NFC", path) != path
    ):
        raise DatasetError.of(
            "path {path!r} is not a normal relative path: no leading /, no '.' or '..' "
            "parts, no \\, no control characters, UTF-8 in NFC",
            path=path,
        )


def encode_entry_leaf(entry: DatasetEntry) -> bytes:
    """Return the bytes of an entry's leaf: a tagged canonical array."""
    return pack([DATASET_LEAF_TAG, entry.path, entry.size, entry.digest])


def compute_dataset_root(entries: Sequence[DatasetEntry]) -> bytes:
    """Return the Merkle root over the entries, in the order given."""
    return compute_merkle_root([encode_entry_leaf(entry) for entry in entries])


def compute_entry_path(entries: Sequence[DatasetEntry], index: int) -> tuple[bytes, ...]:
    """Return the Merkle path of entry `index` (RFC 6962 audit path)."""
    return compute_inclusion_proof([encode_entry_leaf(entry) for entry in entries], index)


def sort_entries(entries: Sequence[DatasetEntry]) -> tuple[DatasetEntry, ...]:
    """Return a dataset's entries in their canonical order; raise DatasetError if two
    share a path."""
    ordered = sorted(entries, key=lambda entry: entry.path.encode())
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.path == after.path:
            raise DatasetError.of("two files have the path {path}", path=before.path)
    return tuple(ordered)


def make_dataset_manifest(name: str, category: str, entries: Sequence[DatasetEntry]) -> Manifest:
    """Return the manifest of a dataset of files (entries in any order)."""
    for entry in entries:
        check_entry_path(entry.path)
    ordered = sort_entries(entries)
    _check_anchor_fields(name, category, len(ordered))
    return Manifest(name, category, ordered, compute_dataset_root(ordered))


def make_stream_manifest(
    name: str, category: str, readings: Sequence[bytes], start_ms: int, end_ms: int
) -> Manifest:
    """Return the manifest of one window of a stream: its readings, in order."""
    entries = tuple(
        DatasetEntry(str(index), len(reading), _sha256(reading))
        for index, reading in enumerate(readings)
    )
    _check_anchor_fields(name, category, len(entries))
    if not 0 <= start_ms < end_ms:
        raise DatasetError.of("a window ends after it starts")
    return Manifest(
        name, category, entries, compute_dataset_root(entries), start_ms, end_ms, tuple(readings)
    )


def _check_anchor_fields(name: str, category: str, count: int) -> None:
    try:
        check_anchor_name(name)
    except DecodeError as exc:
        raise DatasetError(str(exc)) from None
    if category not in ANCHOR_CATEGORIES:
        raise DatasetError.of(
            "category {category} is not one of {categories}",
            category=category,
            categories=", ".join(ANCHOR_CATEGORIES),
        )
    if not 1 <= count <= MAX_ANCHOR_FILE_COUNT:
        raise DatasetError.of("a dataset holds 1 to {limit} files", limit=MAX_ANCHOR_FILE_COUNT)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def find_entry_by_path(manifest: Manifest, parts: Sequence[str]) -> int | None:
    """Return the index of the entry whose path the file's path ends with (the longest
    such), or None."""
    normal = [unicodedata.normalize("NFC", part) for part in parts]
    best: tuple[int, int] | None = None
    for index, entry in enumerate(manifest.entries):
        entry_parts = entry.path.split("/")
        if normal[-len(entry_parts) :] == entry_parts and (
            best is None or len(entry_parts) > best[0]
        ):
            best = (len(entry_parts), index)
    return None if best is None else best[1]


# Proofs


def make_file_proof(manifest: Manifest, index: int, inclusion: InclusionProof) -> FileProof:
    """Return the proof of entry `index` of a manifest whose anchor `inclusion` proves."""
    return FileProof(
        manifest.entries[index], index, compute_entry_path(manifest.entries, index), inclusion
    )


def check_file_proof(proof: FileProof, pinned_genesis_hash: bytes) -> ProvenFile:
    """Check a file proof up to the pinned genesis; raise InvalidProof naming the failed check."""
    proven = check_inclusion_proof(proof.inclusion, pinned_genesis_hash)
    anchor = proven.transaction.body
    # Verify the transaction is an anchor, and the entry sits under the root it holds.
    if not isinstance(anchor, AnchorBody):
        raise InvalidProof(
            f"transaction {proven.tx_id.hex()} is a {proven.transaction.kind}, not an anchor"
        )
    entry = proof.entry
    if anchor.window_start_ms is not None and entry.path != str(proof.index):
        raise InvalidProof(
            f"a reading is named by its index: entry {entry.path!r} is at index {proof.index}"
        )
    if not is_valid_inclusion_proof(
        encode_entry_leaf(entry), proof.index, anchor.file_count, proof.dataset_path, anchor.root
    ):
        raise InvalidProof(
            f"the dataset path does not lead from entry {entry.path!r} at index {proof.index} "
            f"to the root of {anchor.name!r} anchored by transaction {proven.tx_id.hex()}"
        )
    return ProvenFile(entry, proof.index, anchor, proven)


def verify_file_matches(
    proven: ProvenFile, size: int, digest: bytes, path_parts: Sequence[str] | None
) -> None:
    """Raise InvalidProof unless a file (its size, SHA-256 and, for a dataset, the path
    it is found at) is the anchored entry."""
    entry = proven.entry
    if size != entry.size or digest != entry.digest:
        raise InvalidProof(
            f"the content is not the anchored one: {size} bytes with SHA-256 {digest.hex()}, "
            f"anchored {entry.size} bytes with SHA-256 {entry.digest.hex()}"
        )
    if path_parts is None or proven.anchor.window_start_ms is not None:
        return
    entry_parts = entry.path.split("/")
    normal = [unicodedata.normalize("NFC", part) for part in path_parts]
    if normal[-len(entry_parts) :] != entry_parts:
        raise InvalidProof(
            f"the file is at {'/'.join(normal[-len(entry_parts) :])!r}, "
            f"its content was anchored as {entry.path!r}"
        )


# The manifest file: JSON, bytes as hex, one entry a line.


def encode_manifest_json(manifest: Manifest) -> str:
    """Return the JSON document of a manifest."""
    head = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "name": manifest.name,
        "category": manifest.category,
        "root": manifest.root.hex(),
        "file_count": len(manifest.entries),
        "total_bytes": manifest.total_bytes,
        "window_start_ms": manifest.window_start_ms,
        "window_end_ms": manifest.window_end_ms,
        "chain_id": manifest.chain_id,
        "tx_id": None if manifest.tx_id is None else manifest.tx_id.hex(),
    }
    rows = []
    for index, entry in enumerate(manifest.entries):
        row: dict[str, Any] = {"path": entry.path, "size": entry.size, "sha256": entry.digest.hex()}
        if manifest.readings is not None:
            row["reading"] = manifest.readings[index].hex()
        rows.append("    " + json.dumps(row, ensure_ascii=False))
    text = json.dumps(head, indent=2, ensure_ascii=False)
    return text[:-2] + ',\n  "entries": [\n' + ",\n".join(rows) + "\n  ]\n}\n"


def decode_manifest_json(text: str) -> Manifest:
    """Parse a manifest; raise DecodeError if malformed or it disagrees with itself."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            raise DecodeError("not a DanangChain anchor manifest")
        if document.get("version") != MANIFEST_VERSION:
            raise DecodeError(f"manifest version {document.get('version')!r} is not supported")
        manifest = _decode_manifest_fields(document)
    except DanangChainError as exc:
        raise DecodeError(f"manifest: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DecodeError(f"manifest: malformed document ({exc!r})") from None
    return manifest


def _decode_manifest_fields(document: dict[str, Any]) -> Manifest:
    rows = document["entries"]
    if not isinstance(rows, list):
        raise DecodeError("entries: expected a list")
    entries = tuple(_decode_entry(row) for row in rows)
    start, end = document["window_start_ms"], document["window_end_ms"]
    if start is None and end is None:
        made = make_dataset_manifest(document["name"], document["category"], entries)
        if made.entries != entries:
            raise DecodeError("entries are not sorted by path, or a path is not normal")
    else:
        readings = tuple(_hex(row["reading"]) for row in rows)
        made = make_stream_manifest(
            document["name"],
            document["category"],
            readings,
            _integer(start, "window_start_ms"),
            _integer(end, "window_end_ms"),
        )
        if made.entries != entries:
            raise DecodeError("a reading's entry is not its index, size and SHA-256")
    for name, value in (
        ("root", made.root.hex()),
        ("file_count", len(made.entries)),
        ("total_bytes", made.total_bytes),
    ):
        if document[name] != value:
            raise DecodeError(f"{name} {document[name]!r} does not match the entries")
    chain_id, tx_id = document.get("chain_id"), document.get("tx_id")
    if chain_id is not None and not isinstance(chain_id, str):
        raise DecodeError("chain_id: expected a string")
    return Manifest(
        made.name,
        made.category,
        made.entries,
        made.root,
        made.window_start_ms,
        made.window_end_ms,
        made.readings,
        chain_id,
        None if tx_id is None else _hash(tx_id, "tx_id"),
    )


def _decode_entry(row: Any) -> DatasetEntry:
    if not isinstance(row, dict) or not isinstance(row.get("path"), str):
        raise DecodeError("an entry is an object with a path, a size and a sha256")
    return DatasetEntry(row["path"], _integer(row["size"], "size"), _hash(row["sha256"], "sha256"))


def encode_file_proof_json(proof: FileProof) -> str:
    """Return the JSON document of a file proof (the inclusion proof nested whole)."""
    anchor = decode_transaction(proof.inclusion.tx_bytes).body
    document = {
        "format": FILE_PROOF_FORMAT,
        "version": FILE_PROOF_VERSION,
        "name": anchor.name if isinstance(anchor, AnchorBody) else None,
        "tx_id": compute_tx_id(proof.inclusion.tx_bytes).hex(),
        "entry": {
            "path": proof.entry.path,
            "size": proof.entry.size,
            "sha256": proof.entry.digest.hex(),
        },
        "index": proof.index,
        "dataset_path": [node.hex() for node in proof.dataset_path],
        "inclusion": json.loads(encode_proof_json(proof.inclusion)),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def decode_file_proof_json(text: str) -> FileProof:
    """Parse a file proof; raise DecodeError if malformed or its summary disagrees."""
    if len(text) > MAX_FILE_PROOF_SIZE:
        raise DecodeError(f"a file proof is at most {MAX_FILE_PROOF_SIZE} bytes")
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != FILE_PROOF_FORMAT:
            raise DecodeError("not a DanangChain file proof")
        if document.get("version") != FILE_PROOF_VERSION:
            raise DecodeError(f"file proof version {document.get('version')!r} is not supported")
        inclusion = decode_proof_json(json.dumps(document["inclusion"]))
        path = document["dataset_path"]
        if not isinstance(path, list) or len(path) > 64:
            raise DecodeError("dataset_path: expected a list of at most 64 hashes")
        proof = FileProof(
            _decode_entry(document["entry"]),
            _integer(document["index"], "index"),
            tuple(_hash(node, "dataset_path") for node in path),
            inclusion,
        )
        if document.get("tx_id") != compute_tx_id(inclusion.tx_bytes).hex():
            raise DecodeError("tx_id does not match the proof's transaction")
    except DanangChainError as exc:
        raise DecodeError(f"file proof: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DecodeError(f"file proof: malformed document ({exc!r})") from None
    return proof


def _hex(value: Any) -> bytes:
    """Parse lowercase hex, nothing else."""
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise DecodeError("expected lowercase hex with an even number of digits")
    return bytes.fromhex(value)


def _hash(value: Any, what: str) -> bytes:
    data = _hex(value)
    if len(data) != HASH_SIZE:
        raise DecodeError(f"{what}: expected {HASH_SIZE} bytes of hex")
    return data


def _integer(value: Any, what: str) -> int:
    """Return a non-negative JSON integer (bool refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DecodeError(f"{what}: expected a non-negative integer")
    return value
