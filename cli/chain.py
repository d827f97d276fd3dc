"""`danangchain chain`: export a chain to a file, and seed a new node from one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

from cli.chain_sources import open_export_file, open_node_export, replay_export
from cli.client import ReadSigner, load_reader, reader_options
from cli.common import EXIT_REFUSED, CliError, emit, json_option
from cli.i18n import TranslatedGroup, _, describe_error
from cli.progress import progress
from danangchain.audit import AuditFailure, AuditSummary, ChainAuditor, CheckedBlock
from danangchain.errors import DecodeError
from danangchain.export import (
    ExportReader,
    encode_block_record,
    encode_end_record,
    encode_export_header,
)
from danangchain.genesis import Genesis, compute_genesis_writes
from danangchain.ledger import ChainTip, get_genesis_tip
from node.config import ConfigError, load_config, load_genesis
from node.storage.store import Store, StoreError

PARTIAL_SUFFIX = ".partial"
IMPORTING_SUFFIX = ".importing"


@click.group(cls=TranslatedGroup)
def chain() -> None:
    """Export a chain to a file, or seed a node from an export (operators, auditors)."""


# chain export


@chain.command("export")
@click.option("--node", "node_url", help="Export from this live node's API.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Export from this stopped node's home folder.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write."
)
@reader_options
@json_option
def chain_export(
    node_url: str | None,
    home: Path | None,
    out: Path,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Write the whole chain (genesis, blocks, certificates, tip) to one file, streaming.

    Example: danangchain chain export --node http://127.0.0.1:26657 --out chain.dnx
    """
    if (node_url is None) == (home is None):
        raise CliError(_("give exactly one of --node URL or --home DIR"))
    signer = load_reader(from_key, keystore_dir, password_file) if node_url else None
    partial = out.with_name(out.name + PARTIAL_SUFFIX)
    try:
        with partial.open("wb") as stream:
            if home is not None:
                genesis, tip = write_home_export(home, stream)
            else:
                genesis, tip = copy_node_export(str(node_url), stream, signer)
            stream.flush()
            os.fsync(stream.fileno())
        partial.replace(out)
    except OSError as exc:
        raise CliError(
            _("cannot write {path}: {reason}").format(path=out, reason=exc.strerror or exc)
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    made = {
        "file": str(out),
        "bytes": out.stat().st_size,
        "height": tip.height,
        "tip_hash": tip.block_hash.hex(),
        "genesis_hash": genesis.hash.hex(),
        "chain_id": genesis.chain_id,
    }
    emit(
        as_json,
        made,
        [
            _("exported blocks 1..{height} of {chain_id}: {out} ({size} bytes)").format(
                height=tip.height, chain_id=genesis.chain_id, out=out, size=made["bytes"]
            ),
            _("genesis {genesis_hash}, tip {tip_hash}").format(
                genesis_hash=made["genesis_hash"], tip_hash=made["tip_hash"]
            ),
        ],
    )


def copy_node_export(
    node_url: str, stream: BinaryIO, signer: ReadSigner | None = None
) -> tuple[Genesis, ChainTip]:
    """Copy a node's export stream to a file, record by record, checking its framing."""
    try:
        with open_node_export(node_url, signer) as reader:
            header = reader.header
            stream.write(encode_export_header(header.genesis, header.height))
            with progress(header.height, _("exporting")) as advance:
                for record in reader:
                    stream.write(encode_block_record(record.block_bytes, record.certificate_bytes))
                    advance(1)
            tip = reader.claimed_tip
            if tip is None:
                raise CliError(_("the node's export stream has no end record"))
            stream.write(encode_end_record(tip))
            return header.genesis, tip
    except (AuditFailure, DecodeError) as exc:
        raise CliError(
            _("the node's export stream is malformed: {reason}").format(reason=describe_error(exc)),
            EXIT_REFUSED,
        ) from None


def write_home_export(home: Path, stream: BinaryIO) -> tuple[Genesis, ChainTip]:
    """Write a stopped node's chain as stored, up to its tip."""
    try:
        config = load_config(home)
        genesis = load_genesis(config)
        store = Store.open_existing(str(config.path(config.data_dir)))
    except (ConfigError, StoreError) as exc:
        raise CliError(describe_error(exc)) from None
    try:
        tip = store.read_tip()
        stream.write(encode_export_header(genesis, tip.height))
        with progress(tip.height, "exporting") as advance:
            for block_bytes, certificate_bytes in read_stored_blocks(store, tip.height):
                stream.write(encode_block_record(block_bytes, certificate_bytes))
                advance(1)
        stream.write(encode_end_record(tip))
        return genesis, tip
    except StoreError as exc:
        raise CliError(describe_error(exc)) from None
    finally:
        store.close()


def read_stored_blocks(store: Store, height: int) -> Iterator[tuple[bytes, bytes]]:
    """Yield the stored bytes of blocks 1..height and their certificates."""
    for number in range(1, height + 1):
        block_bytes = store.read_block_bytes(number)
        certificate_bytes = store.read_certificate_bytes(number)
        if block_bytes is None or certificate_bytes is None:
            raise StoreError(f"the data folder lacks block {number} or its certificate")
        yield block_bytes, certificate_bytes


# chain import


@chain.command("import")
@click.option(
    "--file",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="An export file made by 'chain export'.",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="A node home made by 'network init' whose data folder is still empty.",
)
@json_option
def chain_import(export_file: Path, home: Path, as_json: bool) -> None:
    """Verify every block of an export, then seed an empty node home with it.

    Nothing is written to the home's data folder unless the whole export verifies.
    Example: danangchain chain import --file chain.dnx --home ./mynet/node0
    """
    try:
        config = load_config(home)
        genesis = load_genesis(config)
    except ConfigError as exc:
        raise CliError(describe_error(exc)) from None
    data = config.path(config.data_dir)
    if data.exists() and (not data.is_dir() or any(data.iterdir())):
        raise CliError(
            _("{data} is not empty: import seeds only a node that has no data yet").format(
                data=data
            )
        )
    staging = data.with_name(data.name + IMPORTING_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with open_export_file(export_file) as reader:
            summary = import_export(reader, genesis, staging)
        if data.exists():
            data.rmdir()
        staging.rename(data)
    except AuditFailure as failure:
        raise CliError(
            _("nothing imported: the export is invalid at height {height}: {reason}").format(
                height=failure.height, reason=failure.reason
            ),
            EXIT_REFUSED,
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    made = {
        "home": str(home),
        "data": str(data),
        "height": summary.tip.height,
        "transactions": summary.transactions_checked,
        "tip_hash": summary.tip.block_hash.hex(),
        "genesis_hash": genesis.hash.hex(),
    }
    emit(
        as_json,
        made,
        [
            _(
                "verified and imported blocks 1..{height} ({transactions} transactions) into {data}"
            ).format(
                height=summary.tip.height, transactions=summary.transactions_checked, data=data
            ),
            _("start it with: {command}").format(command=f"danangchain node start --home {home}"),
        ],
    )


def import_export(reader: ExportReader, genesis: Genesis, folder: Path) -> AuditSummary:
    """Verify an export and write it into a new store, each block once its certificate held."""
    if reader.header.genesis.hash != genesis.hash:
        raise CliError(
            _("the export is of genesis {export_genesis}, the home's is {home_genesis}").format(
                export_genesis=reader.header.genesis.hash.hex(), home_genesis=genesis.hash.hex()
            )
        )
    store = Store.open(str(folder))
    try:
        store.initialise(genesis.hash, compute_genesis_writes(genesis), get_genesis_tip(genesis))
        held: list[CheckedBlock] = []
        with progress(reader.header.height, _("importing")) as advance:

            def commit_previous(checked: CheckedBlock) -> None:
                # A block's own certificate is verified when the next block is checked.
                if held:
                    commit(store, held.pop())
                held.append(checked)
                advance(1)

            summary = replay_export(reader, ChainAuditor(genesis, genesis.hash), commit_previous)
        if held:
            commit(store, held.pop())
        return summary
    finally:
        store.close()


def commit(store: Store, checked: CheckedBlock) -> None:
    """Write one verified block in one synced batch, as the node commits it."""
    store.commit(checked.result, checked.certificate, checked.tip)
