"""`danangchain audit prove-file` / `check-file`: the proof that one anchored file (or one
reading of a stream) existed, unchanged, no later than a certified block's time.

A file proof is the file's entry and Merkle path in its dataset, on top of the anchor
transaction's inclusion proof (`audit prove`); checking it needs no node.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from cli.audit import audit, genesis_pin_options, read_pinned_hash
from cli.audit_witnesses import (
    check_proof_witnesses,
    describe_agreement,
    gather_witnesses,
    parse_witness_options,
    witness_options,
)
from cli.client import NodeClient
from cli.common import EXIT_REFUSED, CliError, emit, hash_file, json_option, node_option
from cli.i18n import TranslatedCommand, _
from danangchain.address import compute_address, encode_address
from danangchain.dataset import (
    FileProof,
    Manifest,
    ProvenFile,
    check_file_proof,
    decode_file_proof_json,
    decode_manifest_json,
    encode_file_proof_json,
    find_entry_by_path,
    make_file_proof,
    verify_file_matches,
)
from danangchain.errors import DecodeError
from danangchain.proof import InvalidProof, check_inclusion_proof, decode_proof_json
from danangchain.transaction import AnchorBody
from danangchain.witness_check import WitnessCheckFailed, attach_proof_witnesses


@click.command("prove-file", cls=TranslatedCommand)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--manifest",
    "manifest_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The manifest 'anchor' wrote.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the proof (JSON).",
)
@click.option("--reading", help="A stream's reading as text (its UTF-8 bytes), instead of FILE.")
@click.option(
    "--index", type=click.IntRange(0), help="A stream's reading: its index in the window."
)
@node_option
@witness_options
@json_option
def audit_prove_file(
    file: Path | None,
    manifest_file: Path,
    out: Path,
    reading: str | None,
    index: int | None,
    node_url: str,
    witness_pins: tuple[str, ...],
    min_witnesses: int | None,
    checkpoints_file: Path | None,
    as_json: bool,
) -> None:
    """Make the offline proof of FILE, one file of an anchored dataset: its entry in the
    manifest, the dataset's root, the anchor transaction, its block and certificate. For
    a stream's reading, give the window's manifest and --index N (or the reading). With
    --witness, add each witness's first checkpoint at or above the block and the headers
    that link it to the block.

    Example: danangchain audit prove-file air-2026/station-7.csv --manifest air-2026.anchor.json
    --out station-7.proof
    """
    witnesses = parse_witness_options(witness_pins, min_witnesses, checkpoints_file)
    manifest = read_manifest(manifest_file)
    position = locate_entry(manifest, manifest_file, file, reading, index)
    if manifest.tx_id is None:
        raise CliError(_("{path} names no anchor transaction").format(path=manifest_file))
    inclusion = fetch_anchor_proof(NodeClient(node_url), manifest)
    proof = make_file_proof(manifest, position, inclusion)
    try:
        proven = check_file_proof(proof, inclusion.genesis.hash)
    except InvalidProof as exc:
        raise CliError(f"the proof does not check: {exc}", EXIT_REFUSED) from None
    text = encode_file_proof_json(proof)
    if witnesses is not None:
        text = attach_proof_witnesses(text, gather_witnesses(node_url, inclusion.header, witnesses))
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(
            _("cannot write {path}: {reason}").format(path=out, reason=exc.strerror)
        ) from None
    genesis = inclusion.genesis.hash.hex()
    made = {
        "name": manifest.name,
        "path": proven.entry.path,
        "index": position,
        "tx_id": proven.inclusion.tx_id.hex(),
        "height": proven.inclusion.height,
        "file": str(out),
        "genesis_hash": genesis,
    }
    checked = "--reading TEXT" if manifest.is_stream else "FILE"
    emit(
        as_json,
        made,
        [
            _("proof of {path} in {name} (block {height}): {out}").format(
                path=proven.entry.path, name=manifest.name, height=made["height"], out=out
            ),
            _(
                "check it anywhere with: "
                "danangchain audit check-file {file} {out} --genesis-hash {genesis}"
            ).format(file=checked, out=out, genesis=genesis),
        ],
    )


def read_manifest(path: Path) -> Manifest:
    """Read and decode a manifest, or fail in one line."""
    try:
        return decode_manifest_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=path, reason=describe_os_error(exc))
        ) from None
    except DecodeError as exc:
        raise CliError(f"{path}: {exc}") from None


def read_content(file: Path | None, reading: str | None) -> tuple[int, bytes] | None:
    """Return the size and SHA-256 of FILE or of --reading's text, or None if neither."""
    if file is not None and reading is not None:
        raise CliError(_("give FILE or --reading, not both"))
    if reading is not None:
        return hash_bytes(reading.encode())
    if file is None:
        return None
    try:
        return hash_file(file)
    except OSError as exc:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=file, reason=exc.strerror)
        ) from None


def describe_os_error(error: OSError | UnicodeDecodeError) -> str:
    """Return why a file could not be read, without Python's decoration."""
    if isinstance(error, UnicodeDecodeError):
        return _("not UTF-8 text")
    return error.strerror or str(error)


def hash_bytes(data: bytes) -> tuple[int, bytes]:
    """Return the size and SHA-256 of some bytes."""
    return len(data), hashlib.sha256(data).digest()


def locate_entry(
    manifest: Manifest,
    manifest_file: Path,
    file: Path | None,
    reading: str | None,
    index: int | None,
) -> int:
    """Return the index of the entry to prove; refuse content that is not that entry's."""
    content = read_content(file, reading)
    if not manifest.is_stream:
        if file is None or index is not None:
            raise CliError(_("a dataset's file is proven by FILE (no --reading or --index)"))
        position = find_entry_by_path(manifest, Path(file).absolute().parts)
        if position is None:
            raise CliError(
                _("{file} is not in {manifest}: no entry has its path").format(
                    file=file, manifest=manifest_file
                )
            )
    else:
        position = locate_reading(manifest, manifest_file, content, index)
    entry = manifest.entries[position]
    if content is not None and content != (entry.size, entry.digest):
        raise CliError(
            _("{file} does not match its entry {path} in {manifest}: it changed since").format(
                file=file or "--reading", path=entry.path, manifest=manifest_file
            )
        )
    return position


def locate_reading(
    manifest: Manifest, manifest_file: Path, content: tuple[int, bytes] | None, index: int | None
) -> int:
    """Return the index of a stream's reading: --index, else the one reading with that content."""
    if index is not None:
        if index >= len(manifest.entries):
            raise CliError(
                _("--index {index}: the window has {count} readings").format(
                    index=index, count=len(manifest.entries)
                )
            )
        return index
    if content is None:
        raise CliError(_("give the reading's --index, or the reading (FILE or --reading)"))
    found = [i for i, e in enumerate(manifest.entries) if (e.size, e.digest) == content]
    if len(found) != 1:
        raise CliError(
            _("{count} readings of {manifest} have that content: give --index").format(
                count=len(found), manifest=manifest_file
            )
        )
    return found[0]


def fetch_anchor_proof(client: NodeClient, manifest: Manifest) -> Any:
    """Return the node's inclusion proof of the manifest's anchor, checked, or fail."""
    tx_id = (manifest.tx_id or b"").hex()
    document = client.get(f"/proofs/tx/{tx_id}")
    try:
        inclusion = decode_proof_json(json.dumps(document))
        proven = check_inclusion_proof(inclusion, inclusion.genesis.hash)
    except (DecodeError, InvalidProof) as exc:
        raise CliError(f"the node's proof does not check: {exc}", EXIT_REFUSED) from None
    if proven.tx_id.hex() != tx_id:
        raise CliError("the node sent the proof of another transaction", EXIT_REFUSED)
    if proven.transaction.body != manifest.body():
        raise CliError(
            _(
                "the manifest does not match transaction {tx_id}: its root, name or size differ"
            ).format(tx_id=tx_id)
        )
    return inclusion


@click.command("check-file", cls=TranslatedCommand)
@click.argument("arguments", nargs=-1, required=True, metavar="[FILE] PROOF")
@click.option("--reading", help="A stream's reading as text (its UTF-8 bytes), instead of FILE.")
@genesis_pin_options
@witness_options
@json_option
def audit_check_file(
    arguments: tuple[str, ...],
    reading: str | None,
    genesis_hash: str | None,
    genesis_file: Path | None,
    witness_pins: tuple[str, ...],
    min_witnesses: int | None,
    checkpoints_file: Path | None,
    as_json: bool,
) -> None:
    """Check offline that FILE (or a stream's --reading) is the one PROOF shows anchored,
    against a pinned genesis. Exit 0: valid, with the dataset, height and time; 1: the
    file, its entry, its path or anything above differs; 2: usage error. With --witness,
    the anchor's block must also be cosigned by K pinned witnesses.

    Example: danangchain audit check-file station-7.csv station-7.proof --genesis-hash 3fa2...
    """
    if len(arguments) != (1 if reading is not None else 2):
        raise CliError(_("give FILE and PROOF, or --reading TEXT and PROOF"))
    pinned = read_pinned_hash(genesis_hash, genesis_file)
    if pinned is None:
        raise CliError(_("pin the genesis with --genesis-hash or --genesis"))
    file = None if reading is not None else Path(arguments[0])
    proof_file = Path(arguments[-1])
    witnesses = parse_witness_options(witness_pins, min_witnesses, checkpoints_file, True)
    size, digest = read_content(file, reading) or hash_bytes(b"")
    text = read_proof_text(proof_file)
    proof = read_file_proof(text, as_json)
    agreement = None
    try:
        proven = check_file_proof(proof, pinned)
        parts = None if file is None else file.absolute().parts
        verify_file_matches(proven, size, digest, parts)
        if witnesses is not None:
            agreement = check_proof_witnesses(text, proof.inclusion.header, witnesses)
    except (InvalidProof, WitnessCheckFailed) as exc:
        refuse(as_json, str(exc))
    report = describe_proven(proven)
    if agreement is not None:
        report["witnesses"] = agreement.to_json()
    lines = describe_lines(report, proven.anchor) + describe_agreement(agreement)
    emit(as_json, report, lines)


def read_proof_text(path: Path) -> str:
    """Read a proof file's text; an unreadable file is a usage error."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=path, reason=describe_os_error(exc))
        ) from None


def read_file_proof(text: str, as_json: bool) -> FileProof:
    """Decode a file proof; a malformed one is invalid (exit 1)."""
    try:
        return decode_file_proof_json(text)
    except DecodeError as exc:
        refuse(as_json, str(exc))


def refuse(as_json: bool, reason: str) -> NoReturn:
    """Print why a proof is invalid and exit 1."""
    line = _("INVALID proof: {reason}").format(reason=reason)
    emit(as_json, {"valid": False, "reason": reason}, [line])
    sys.exit(EXIT_REFUSED)


def describe_proven(proven: ProvenFile) -> dict[str, Any]:
    """Return the report of a valid file proof."""
    anchor, inclusion = proven.anchor, proven.inclusion
    return {
        "valid": True,
        "name": anchor.name,
        "category": anchor.category,
        "path": proven.entry.path,
        "index": proven.index,
        "size": proven.entry.size,
        "sha256": proven.entry.digest.hex(),
        "file_count": anchor.file_count,
        "window_start_ms": anchor.window_start_ms,
        "window_end_ms": anchor.window_end_ms,
        "tx_id": inclusion.tx_id.hex(),
        "sender": encode_address(compute_address(inclusion.transaction.sender)),
        "height": inclusion.height,
        "block_hash": inclusion.block_hash.hex(),
        "time_ms": inclusion.time_ms,
        "time": format_time(inclusion.time_ms),
        "signed_power": inclusion.signed_power,
        "total_power": inclusion.total_power,
        "genesis_hash": inclusion.genesis_hash.hex(),
    }


def format_time(time_ms: int) -> str:
    """Return a block time as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(time_ms / 1000, UTC).isoformat(timespec="milliseconds")


def describe_lines(report: dict[str, Any], anchor: AnchorBody) -> list[str]:
    """Return the readable lines of a valid file proof."""
    if anchor.window_start_ms is None:
        first = _("valid: {path} ({size} bytes) is entry {index} of the {count} in dataset {name}")
    else:
        first = _(
            "valid: reading {index} ({size} bytes) of {count} in {name}, window {start} to {end}"
        )
    return [
        first.format(
            path=report["path"],
            size=report["size"],
            index=report["index"],
            count=report["file_count"],
            name=report["name"],
            start=format_time(anchor.window_start_ms or 0),
            end=format_time(anchor.window_end_ms or 0),
        ),
        _("anchored by {sender} in transaction {tx_id}, block {height}, at {time}").format(
            sender=report["sender"],
            tx_id=report["tx_id"],
            height=report["height"],
            time=report["time"],
        ),
        _("signed by validators with {signed} of {total} voting power").format(
            signed=report["signed_power"], total=report["total_power"]
        ),
    ]


audit.add_command(audit_prove_file)
audit.add_command(audit_check_file)
