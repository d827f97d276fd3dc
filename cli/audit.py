"""`danangchain audit`: verify a whole chain, and make or check the proof of one record."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from cli.audit_doc import add_document_salt, check_document
from cli.audit_witnesses import (
    check_proof_witnesses,
    describe_agreement,
    gather_witnesses,
    parse_witness_options,
    witness_options,
)
from cli.chain_sources import (
    open_export_file,
    open_home,
    open_node_export,
    replay_export,
    replay_home,
)
from cli.client import NodeClient, ReadSigner, load_reader, reader_options
from cli.common import EXIT_REFUSED, CliError, emit, json_option, node_option, parse_hex_id
from cli.i18n import TranslatedGroup, _, describe_error
from cli.progress import Advance, progress
from cli.signature_prefetch import SignaturePrefetch
from danangchain.address import compute_address, encode_address
from danangchain.audit import AuditFailure, AuditSummary, ChainAuditor, CheckedBlock
from danangchain.checkpoint import Cosignature, InvalidCosignature
from danangchain.errors import DecodeError
from danangchain.genesis import Genesis, decode_genesis_json
from danangchain.proof import (
    InvalidProof,
    check_inclusion_proof,
    decode_proof_json,
    encode_proof_json,
)
from danangchain.witness_check import (
    ChainWitnessCheck,
    WitnessAgreement,
    WitnessCheckFailed,
    WitnessRequirement,
    attach_proof_witnesses,
)
from node.chain.verify_pool import available_cores
from node.storage.store import Store, StoreError


@click.group(cls=TranslatedGroup)
def audit() -> None:
    """Check the ledger without trusting any node (auditors)."""


def genesis_pin_options(command: Any) -> Any:
    """Add --genesis-hash H and --genesis FILE, the two ways to pin a chain's genesis."""
    command = click.option(
        "--genesis",
        "genesis_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Pin the genesis to this genesis.json file's hash.",
    )(command)
    return click.option(
        "--genesis-hash",
        help="The genesis hash you trust (64 hex), as printed by 'network init'.",
    )(command)


def read_pinned_hash(genesis_hash: str | None, genesis_file: Path | None) -> bytes | None:
    """Return the pinned genesis hash from --genesis-hash or --genesis, or None."""
    if genesis_hash is not None and genesis_file is not None:
        raise CliError(_("give --genesis-hash or --genesis, not both"))
    if genesis_hash is not None:
        return parse_hex_id(genesis_hash, "--genesis-hash")
    if genesis_file is None:
        return None
    try:
        return decode_genesis_json(genesis_file.read_text()).hash
    except OSError as exc:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=genesis_file, reason=exc.strerror)
        ) from None
    except (DecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{genesis_file}: {describe_error(exc)}") from None


# audit verify


@audit.command("verify")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="A stopped node's home folder (its data is only read).",
)
@click.option("--node", "node_url", help="A live node's API URL: stream its chain.")
@click.option(
    "--file",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An export file made by 'chain export'.",
)
@reader_options
@genesis_pin_options
@witness_options
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes that check signatures ahead of the replay (default: one per core; "
    "1: none). The result is the same for any number.",
)
@json_option
def audit_verify(
    home: Path | None,
    node_url: str | None,
    export_file: Path | None,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    genesis_hash: str | None,
    genesis_file: Path | None,
    witness_pins: tuple[str, ...],
    min_witnesses: int | None,
    checkpoints_file: Path | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Replay a whole chain from its genesis and check every block, signature, rule,
    state root and certificate; with --witness, also that the chain is the one at least
    K pinned witnesses cosigned. Exit 0: valid; 1: invalid (first failing height and
    why); 2: usage or I/O error.

    Example: danangchain audit verify --file chain.dnx --genesis-hash 3fa2...
    """
    sources = [s for s in (home, node_url, export_file) if s is not None]
    if len(sources) != 1:
        raise CliError(_("give exactly one of --home DIR, --node URL or --file F"))
    pinned = read_pinned_hash(genesis_hash, genesis_file)
    witnesses = parse_witness_options(witness_pins, min_witnesses, checkpoints_file)
    witnessed = None if witnesses is None else (witnesses.requirement, witnesses.fetch())
    signer = load_reader(from_key, keystore_dir, password_file) if node_url else None
    report = run_verification(home, node_url, export_file, pinned, witnessed, workers, signer)
    emit(as_json, report, describe_report(report))
    if not report["valid"]:
        sys.exit(EXIT_REFUSED)


def run_verification(
    home: Path | None,
    node_url: str | None,
    export_file: Path | None,
    pinned: bytes | None,
    witnessed: tuple[WitnessRequirement, list[Cosignature]] | None = None,
    workers: int | None = None,
    signer: ReadSigner | None = None,
) -> dict[str, Any]:
    """Verify the chain of one source (and, if asked, its agreement with pinned
    witnesses); return the report (valid or not)."""
    started = time.perf_counter()
    auditor: ChainAuditor | None = None
    check: ChainWitnessCheck | None = None

    def start(genesis: Genesis) -> ChainAuditor:
        nonlocal check
        if witnessed is not None:
            try:
                check = ChainWitnessCheck(genesis.chain_id, *witnessed)
            except InvalidCosignature as exc:
                raise CliError(str(exc)) from None
        return ChainAuditor(genesis, pinned, prefetch.is_verified)

    def on_block(checked: CheckedBlock, advance: Advance) -> None:
        advance(1)
        if check is not None:
            check.observe(checked.tip)

    agreement: WitnessAgreement | None = None
    prefetch = SignaturePrefetch(available_cores() if workers is None else workers)
    try:
        if home is not None:
            with open_home(home) as (genesis, store):
                auditor = start(genesis)
                with progress(get_stored_height(store), _("verifying")) as advance:
                    summary = replay_home(store, auditor, lambda c: on_block(c, advance), prefetch)
        else:
            source = (
                open_export_file(export_file)
                if export_file
                else open_node_export(str(node_url), signer)
            )
            with source as reader:
                auditor = start(reader.header.genesis)
                with progress(reader.header.height, _("verifying")) as advance:
                    summary = replay_export(
                        reader, auditor, lambda c: on_block(c, advance), prefetch
                    )
        if check is not None:
            agreement = check.finish(summary.tip)
    except AuditFailure as failure:
        return make_report(auditor, None, failure, pinned, started)
    finally:
        prefetch.close()
    report = make_report(auditor, summary, None, pinned, started)
    if agreement is not None:
        report["witnesses"] = agreement.to_json()
    return report


def get_stored_height(store: Store) -> int:
    """Return the height a data folder claims, for the progress bar (0 if unreadable)."""
    try:
        return store.read_tip().height
    except StoreError:
        return 0


def make_report(
    auditor: ChainAuditor | None,
    summary: AuditSummary | None,
    failure: AuditFailure | None,
    pinned: bytes | None,
    started: float,
) -> dict[str, Any]:
    """Return the report: counts, time, the tip and, when invalid, where and why."""
    report: dict[str, Any] = {
        "valid": failure is None,
        "genesis_pinned": pinned is not None,
        "heights_checked": 0,
        "transactions_checked": 0,
        "validators_seen": 0,
    }
    if auditor is not None:
        checked = auditor.tip.height
        if failure is not None:  # the failing height itself is not checked
            checked = max(0, min(checked, failure.height - 1))
        report.update(
            chain_id=auditor.chain_id,
            genesis_hash=auditor.genesis.hash.hex(),
            heights_checked=checked,
            transactions_checked=auditor.transactions_checked,
            validators_seen=auditor.validators_seen,
        )
    if summary is not None:
        report.update(tip_height=summary.tip.height, tip_hash=summary.tip.block_hash.hex())
    report["seconds"] = round(time.perf_counter() - started, 3)
    if failure is not None:
        report.update(failed_height=failure.height, reason=failure.reason)
        if failure.tx_id is not None:
            report["tx_id"] = failure.tx_id.hex()
    return report


def describe_report(report: dict[str, Any]) -> list[str]:
    """Return the readable lines of a verification report."""
    blocks, txs, validators = (
        report[key] for key in ("heights_checked", "transactions_checked", "validators_seen")
    )
    counts = ", ".join(
        [
            _("{count} block").format(count=blocks)
            if blocks == 1
            else _("{count} blocks").format(count=blocks),
            _("{count} transaction").format(count=txs)
            if txs == 1
            else _("{count} transactions").format(count=txs),
            _("{count} validator").format(count=validators)
            if validators == 1
            else _("{count} validators").format(count=validators),
        ]
    )
    if not report["valid"]:
        lines = [
            _("INVALID at height {height}: {reason}").format(
                height=report["failed_height"], reason=report["reason"]
            )
        ]
        if "tx_id" in report:
            lines.append(_("transaction: {tx_id}").format(tx_id=report["tx_id"]))
        return [*lines, _("checked before the fault: {counts}").format(counts=counts)]
    pin = (
        _("pinned") if report["genesis_pinned"] else _("NOT pinned: pass --genesis-hash to pin it")
    )
    lines = [
        _("valid: {counts}, checked in {seconds} s").format(
            counts=counts, seconds=report["seconds"]
        ),
        _("chain {chain_id}, genesis {genesis_hash} ({pin})").format(
            chain_id=report["chain_id"], genesis_hash=report["genesis_hash"], pin=pin
        ),
        _("tip: height {height}, block {block_hash}").format(
            height=report["tip_height"], block_hash=report["tip_hash"]
        ),
    ]
    if "witnesses" in report:
        witnessed = report["witnesses"]
        agreeing = len(witnessed["witnesses"])
        lines.append(
            _(
                "witnessed: {count} pinned witness(es) cosigned this chain; "
                "it is witnessed up to height {height}"
            ).format(count=agreeing, height=witnessed["witnessed_height"])
        )
    return lines


# audit prove / check-proof


@audit.command("prove")
@click.argument("tx_id")
@node_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the proof (JSON).",
)
@click.option(
    "--doc",
    "doc_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The record's document: checked, and for a sealed record its salt is kept in "
    "the proof (needs --from, the creator's key).",
)
@reader_options
@witness_options
@json_option
def audit_prove(
    tx_id: str,
    node_url: str,
    out: Path,
    doc_file: Path | None,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    witness_pins: tuple[str, ...],
    min_witnesses: int | None,
    checkpoints_file: Path | None,
    as_json: bool,
) -> None:
    """Fetch the inclusion proof of committed transaction TX_ID and save it for later;
    with --witness, add each witness's first checkpoint at or above the block and the
    headers that link it to the block.

    Example: danangchain audit prove 3f2a... --out invoice.proof
    """
    parse_hex_id(tx_id, _("transaction id"))
    witnesses = parse_witness_options(witness_pins, min_witnesses, checkpoints_file)
    signer = load_reader(from_key, keystore_dir, password_file)
    document = NodeClient(node_url, signer=signer).get(f"/proofs/tx/{tx_id}")
    try:
        proof = decode_proof_json(json.dumps(document))
        proven = check_inclusion_proof(proof, proof.genesis.hash)
    except (DecodeError, InvalidProof) as exc:
        raise CliError(
            _("the node's proof does not check: {reason}").format(reason=describe_error(exc)),
            EXIT_REFUSED,
        ) from None
    if proven.tx_id.hex() != tx_id.lower():
        raise CliError(_("the node sent the proof of another transaction"), EXIT_REFUSED)
    text = encode_proof_json(proof)
    if doc_file is not None:
        key = None if signer is None else signer.key
        text = add_document_salt(text, proven.transaction, doc_file, key)
    if witnesses is not None:
        text = attach_proof_witnesses(text, gather_witnesses(node_url, proof.header, witnesses))
    try:
        out.write_text(text)
    except OSError as exc:
        raise CliError(
            _("cannot write {path}: {reason}").format(path=out, reason=exc.strerror)
        ) from None
    genesis = proof.genesis.hash.hex()
    made = {
        "tx_id": tx_id.lower(),
        "height": proven.height,
        "index": proven.index,
        "file": str(out),
        "genesis_hash": genesis,
    }
    emit(
        as_json,
        made,
        [
            _("proof of {tx_id} (block {height}, index {index}): {out}").format(
                tx_id=tx_id.lower(), height=proven.height, index=proven.index, out=out
            ),
            _("check it anywhere with: {command}").format(
                command=f"danangchain audit check-proof {out} --genesis-hash {genesis}"
            ),
        ],
    )


@audit.command("check-proof")
@click.argument("proof_file", type=click.Path(dir_okay=False, path_type=Path))
@genesis_pin_options
@click.option(
    "--file",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pin the genesis to the one of this export file.",
)
@click.option(
    "--doc",
    "doc_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also show that this document is the one the proven record names.",
)
@witness_options
@json_option
def audit_check_proof(
    proof_file: Path,
    genesis_hash: str | None,
    genesis_file: Path | None,
    export_file: Path | None,
    doc_file: Path | None,
    witness_pins: tuple[str, ...],
    min_witnesses: int | None,
    checkpoints_file: Path | None,
    as_json: bool,
) -> None:
    """Check an inclusion proof offline against a pinned genesis. Exit 0: valid;
    1: invalid (why); 2: usage error.

    Example: danangchain audit check-proof invoice.proof --genesis-hash 3fa2...
    """
    pins = [p for p in (genesis_hash, genesis_file, export_file) if p is not None]
    if len(pins) != 1:
        raise CliError(_("pin the genesis with exactly one of --genesis-hash, --genesis or --file"))
    pinned = read_pinned_hash(genesis_hash, genesis_file) or read_export_genesis(export_file)
    witnesses = parse_witness_options(witness_pins, min_witnesses, checkpoints_file, True)
    try:
        text = proof_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=proof_file, reason=exc)
        ) from None
    try:
        proof = decode_proof_json(text)
        proven = check_inclusion_proof(proof, pinned)
        agreement = None
        if witnesses is not None:
            agreement = check_proof_witnesses(text, proof.header, witnesses)
    except (DecodeError, InvalidProof, WitnessCheckFailed) as exc:
        line = _("INVALID proof: {reason}").format(reason=exc)
        emit(as_json, {"valid": False, "reason": str(exc)}, [line])
        sys.exit(EXIT_REFUSED)
    tx = proven.transaction
    mismatch = None if doc_file is None else check_document(text, tx, doc_file)
    if mismatch is not None:
        line = _("INVALID proof: {reason}").format(reason=mismatch)
        emit(as_json, {"valid": False, "reason": mismatch}, [line])
        sys.exit(EXIT_REFUSED)
    report: dict[str, Any] = {
        "valid": True,
        "tx_id": proven.tx_id.hex(),
        "height": proven.height,
        "index": proven.index,
        "block_hash": proven.block_hash.hex(),
        "time_ms": proven.time_ms,
        "kind": tx.kind,
        "sender": encode_address(compute_address(tx.sender)),
        "signed_power": proven.signed_power,
        "total_power": proven.total_power,
        "genesis_hash": proven.genesis_hash.hex(),
    }
    if agreement is not None:
        report["witnesses"] = agreement.to_json()
    if doc_file is not None:
        report["document"] = str(doc_file)
    emit(
        as_json,
        report,
        [
            _("valid: transaction {tx_id} ({kind} by {sender})").format(
                tx_id=report["tx_id"], kind=tx.kind, sender=report["sender"]
            ),
            _("is transaction {index} of block {height} ({block_hash}),").format(
                index=proven.index, height=proven.height, block_hash=report["block_hash"]
            ),
            _("signed by validators with {signed} of {total} voting power").format(
                signed=proven.signed_power, total=proven.total_power
            ),
            *describe_agreement(agreement),
            *(
                []
                if doc_file is None
                else [_("document {path} is the one recorded").format(path=doc_file)]
            ),
        ],
    )


def read_export_genesis(export_file: Path | None) -> bytes:
    """Return the genesis hash an export file opens with."""
    if export_file is None:
        raise CliError(_("no genesis to pin"))
    try:
        with open_export_file(export_file) as reader:
            return reader.header.genesis.hash
    except AuditFailure as failure:
        raise CliError(f"{export_file}: {failure.reason}") from None
