"""Where an audited chain comes from, and the loops that replay it block by block.

Three sources: an export file, a live node's export stream (GET /chain/export), and a
stopped node's data folder. Each loop hands one block at a time to the core's
ChainAuditor, so memory stays flat however long the chain is. A fault in the data
becomes an AuditFailure (exit 1); a source that cannot be read at all is a CliError
(exit 2).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from cli.client import NodeClient, ReadSigner, describe_read_refusal
from cli.common import CliError
from cli.i18n import _, describe_error
from cli.signature_prefetch import SignaturePrefetch
from danangchain.address import encode_address
from danangchain.audit import AuditFailure, AuditSummary, ChainAuditor, CheckedBlock
from danangchain.encoding import pack
from danangchain.errors import DanangChainError, DecodeError
from danangchain.export import ExportReader, NotAnExport
from danangchain.genesis import Genesis
from danangchain.rules import get_record_index_addresses
from danangchain.state import (
    KEY_LAST_VALIDATORS,
    KEY_NEXT_VALIDATORS,
    KEY_VALIDATORS,
    PREFIX_MEMBER,
    PREFIX_RECORD,
    DictState,
    StateView,
)
from node.config import ConfigError, load_config, load_genesis
from node.storage.schema import SCHEMA_VERSION, encode_tx_location
from node.storage.store import Store, StoreCorruption, StoreError

OnBlock = Callable[[CheckedBlock], None]
EXPORT_PATH = "/chain/export"
READ_BUFFER = 1024 * 1024


# Opening sources


@contextmanager
def open_export_file(path: Path) -> Iterator[ExportReader]:
    """Open an export file for reading; a missing file or a non-export is a usage error."""
    try:
        stream: BinaryIO = path.open("rb", buffering=READ_BUFFER)
    except OSError as exc:
        raise CliError(
            _("cannot read {path}: {reason}").format(path=path, reason=exc.strerror)
        ) from None
    with stream:
        yield _start_reading(stream.read, str(path))


@contextmanager
def open_node_export(node_url: str, signer: ReadSigner | None = None) -> Iterator[ExportReader]:
    """Stream a live node's chain export, the read signed by an auditor's or a witness's
    key; a node that cannot be reached or refuses the read is a usage error."""
    url = node_url.rstrip("/") + EXPORT_PATH
    if not url.startswith(("http://", "https://")):
        raise CliError(
            _("node URL {url} must start with http:// or https://").format(url=repr(node_url))
        )
    headers = NodeClient(node_url, signer=signer).authorization(EXPORT_PATH)
    # Straight to the node, as the other commands go: no proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=30)
    except urllib.error.HTTPError as exc:
        refusal = describe_read_refusal(exc.code, read_error_document(exc))
        if refusal is not None:
            raise CliError(refusal) from None
        raise CliError(
            _("the node at {url} answered {status} to {path}").format(
                url=node_url, status=exc.code, path=EXPORT_PATH
            )
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            _("cannot reach the node at {url}: {reason}").format(url=node_url, reason=reason)
        ) from None
    with response:
        try:
            yield _start_reading(response.read, node_url)
        except (http.client.HTTPException, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise CliError(
                _("the stream from {url} broke: {reason}").format(url=node_url, reason=reason)
            ) from None


def read_error_document(error: urllib.error.HTTPError) -> dict[str, Any]:
    """Return the JSON error a node answered with, or an empty one."""
    try:
        document = json.loads(error.read(64 * 1024))
    except (ValueError, OSError):
        return {}
    return document if isinstance(document, dict) else {}


def _start_reading(read: Callable[[int], bytes], name: str) -> ExportReader:
    """Read an export's header; a bad header is a fault at height 0."""
    try:
        return ExportReader(read)
    except NotAnExport as exc:
        raise CliError(f"{name}: {exc}") from None
    except DecodeError as exc:
        raise AuditFailure(0, f"the export's header: {exc}") from None


@contextmanager
def open_home(home: Path) -> Iterator[tuple[Genesis, Store]]:
    """Open a stopped node's home: its genesis file and its data folder, creating nothing."""
    try:
        config = load_config(home)
        genesis = load_genesis(config)
    except ConfigError as exc:
        raise CliError(describe_error(exc)) from None
    try:
        store = Store.open_existing(str(config.path(config.data_dir)))
    except StoreCorruption as exc:
        raise AuditFailure(0, str(exc)) from None
    except StoreError as exc:
        raise CliError(describe_error(exc)) from None
    try:
        yield genesis, store
    finally:
        store.close()


# Replaying


def replay_export(
    reader: ExportReader,
    auditor: ChainAuditor,
    on_block: OnBlock,
    prefetch: SignaturePrefetch | None = None,
) -> AuditSummary:
    """Check every block of an export, then its claimed tip (with `prefetch`, the
    signatures ahead on other cores)."""
    records = (
        ((record, record.block_bytes) for record in reader)
        if prefetch is None
        else prefetch.run(reader, _block_bytes)
    )
    while True:
        try:
            entry = next(records, None)
        except DecodeError as exc:
            fail(auditor, min(auditor.next_height, reader.header.height), str(exc))
        if entry is None:
            break
        record, block = entry
        on_block(auditor.check_block(block, record.certificate_bytes))
    if reader.claimed_tip is None:  # the iterator reads the end record before it stops
        raise AuditFailure(reader.header.height, "the export has no end record")
    return auditor.finish(reader.claimed_tip)


def _block_bytes(record: Any) -> bytes:
    return bytes(record.block_bytes)


def replay_home(
    store: Store,
    auditor: ChainAuditor,
    on_block: OnBlock,
    prefetch: SignaturePrefetch | None = None,
) -> AuditSummary:
    """Check every stored block, then the stored tip, state and indexes against the replay."""
    try:
        check_store_metadata(store, auditor.genesis)
        claimed_tip = store.read_tip()
    except StoreError as exc:  # corrupt, or no tip: not a chain that can be valid
        raise AuditFailure(0, str(exc)) from None
    records_indexed = replay_stored_blocks(store, auditor, on_block, prefetch)
    summary = auditor.finish(claimed_tip)
    check_stored_state(store, auditor.state, summary.tip.height)
    check_index_counts(store, summary, records_indexed)
    return summary


def replay_stored_blocks(
    store: Store,
    auditor: ChainAuditor,
    on_block: OnBlock,
    prefetch: SignaturePrefetch | None = None,
) -> int:
    """Check every stored block and the index entries it wrote; return how many record entries."""
    records_indexed = 0
    stored = store.iter_block_bytes()
    blocks = (
        ((entry, entry[1]) for entry in stored)
        if prefetch is None
        else prefetch.run(stored, lambda entry: entry[1])
    )
    try:
        for (height, _), block in blocks:
            expected = auditor.next_height
            if height != expected:
                found = "a malformed key" if height is None else f"height {height}"
                fail(auditor, expected, f"block {expected} is missing: the next is {found}")
            checked = auditor.check_block(block, store.read_certificate_bytes(height))
            try:
                records_indexed += check_block_indexes(store, checked, StateView(auditor.state))
            except AuditFailure:
                # A block rewritten after it was signed betrays itself first by its certificate.
                auditor.verify_pending_certificate()
                raise
            on_block(checked)
    except StoreCorruption as exc:  # the next block or its certificate cannot be read
        fail(auditor, auditor.next_height, str(exc))
    return records_indexed


@contextmanager
def reading(height: int, entry: str, tx_id: bytes | None = None) -> Iterator[None]:
    """Turn an entry LevelDB cannot read into a failure at the height it belongs to."""
    try:
        yield
    except StoreCorruption as exc:
        raise unreadable(height, entry, exc, tx_id) from None


def unreadable(
    height: int, entry: str, error: StoreCorruption, tx_id: bytes | None = None
) -> AuditFailure:
    """Return the failure of an entry LevelDB cannot read, at the height it belongs to."""
    return AuditFailure(height, f"{entry} is unreadable: {error}", tx_id)


def fail(auditor: ChainAuditor, height: int, reason: str) -> NoReturn:
    """Report a fault of the source, unless the tip's own certificate fails first."""
    auditor.verify_pending_certificate()
    raise AuditFailure(height, reason)


def check_store_metadata(store: Store, genesis: Genesis) -> None:
    """Refuse a data folder made for another genesis or schema."""
    stored = store.get_genesis_hash()
    if stored != genesis.hash:
        made_for = "no genesis" if stored is None else f"genesis {stored.hex()}"
        raise AuditFailure(
            0, f"the data folder was made for {made_for}, the genesis file is {genesis.hash.hex()}"
        )
    if store.get_schema_version() != pack(SCHEMA_VERSION):
        raise AuditFailure(0, "the data folder's schema version is not this version's")


def check_block_indexes(store: Store, checked: CheckedBlock, after: StateView) -> int:
    """Check the index entries a block's commit wrote (`after`: the state the block left);
    return how many record entries."""
    block = checked.result.block
    height = block.height
    records_indexed = 0
    # Two lookups per transaction: the names in a failure are built only when one fails.
    for index, (tx, tx_id) in enumerate(
        zip(block.transactions, checked.result.tx_ids, strict=True)
    ):
        try:
            location = store.read_tx_location(tx_id)
        except StoreCorruption as exc:
            entry = f"the transaction index entry of transaction {index}"
            raise unreadable(height, entry, exc, tx_id) from None
        if location != encode_tx_location(height, index):
            raise AuditFailure(
                height, f"the transaction index does not place transaction {index} here", tx_id
            )
        for address in get_record_index_addresses(after, tx):
            try:
                record_id = store.read_address_record(address, height, index)
            except StoreCorruption as exc:
                entry = (
                    f"the record index entry of {encode_address(address)} for transaction {index}"
                )
                raise unreadable(height, entry, exc, tx_id) from None
            if record_id != tx_id:
                raise AuditFailure(
                    height,
                    f"the record index of {encode_address(address)} lacks transaction {index}",
                    tx_id,
                )
            records_indexed += 1
    return records_indexed


def check_index_counts(store: Store, summary: AuditSummary, records_indexed: int) -> None:
    """Refuse index entries or certificates that no replayed block accounts for."""
    height = summary.tip.height
    # The entries each block accounts for were read with it: this finds only the others.
    with reading(height, "while counting certificates and index entries, one"):
        counts = store.count_entries()
    if counts["certificates"] != height:
        raise AuditFailure(height, f"{counts['certificates']} certificates for {height} blocks")
    if counts["tx_index"] != summary.transactions_checked:
        raise AuditFailure(
            height,
            f"the transaction index has {counts['tx_index']} entries for "
            f"{summary.transactions_checked} transactions",
        )
    if counts["address_index"] != records_indexed:
        raise AuditFailure(
            height,
            f"the record index has {counts['address_index']} entries, "
            f"the blocks account for {records_indexed}",
        )


def check_stored_state(store: Store, replayed: DictState, height: int) -> None:
    """Compare the stored state, entry by entry, with the replayed state at the tip."""
    count = 0
    try:
        for key, value in store.iter_state():
            expected = replayed.get(key)
            if expected != value:
                change = "is not in" if expected is None else "differs from"
                raise AuditFailure(
                    height, f"the stored state entry {describe_state_key(key)} {change} the replay"
                )
            count += 1
    except StoreCorruption as exc:
        entry = find_unreadable_state_entry(store, replayed)
        raise AuditFailure(height, f"{entry} is unreadable: {exc}") from None
    if count != len(replayed.items):
        for key in replayed.items:
            with reading(height, f"the state entry {describe_state_key(key)}"):
                stored = store.read_state(key)
            if stored is None:
                raise AuditFailure(
                    height, f"the state entry {describe_state_key(key)} is missing from the store"
                )


def find_unreadable_state_entry(store: Store, replayed: DictState) -> str:
    """Name the first replayed state entry, in key order, that the store cannot read back."""
    # The scan reports where it broke, not the key it could not read: ask key by key.
    for key in sorted(replayed.items):
        try:
            store.read_state(key)
        except StoreCorruption:
            return f"the state entry {describe_state_key(key)}"
    return "a stored state entry that the replay does not hold"


def describe_state_key(key: bytes) -> str:
    """Name a state entry for a person: member dn1..., record <id>, the validator set."""
    try:
        if key.startswith(PREFIX_MEMBER) and len(key) == 21:
            return f"of member {encode_address(key[1:])}"
        if key.startswith(PREFIX_RECORD) and len(key) == 33:
            return f"of record {key[1:].hex()}"
    except DanangChainError:
        pass
    names = {
        KEY_LAST_VALIDATORS: "of the last height's validator set",
        KEY_VALIDATORS: "of the validator set",
        KEY_NEXT_VALIDATORS: "of the upcoming validator set",
    }
    return names.get(key, f"0x{key.hex()}")
