"""`danangchain query`: read the ledger through a node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.client import NodeClient, load_reader, reader_options
from cli.common import (
    emit,
    json_option,
    keystore_option,
    node_option,
    parse_address,
    parse_hex_id,
    password_option,
)
from cli.i18n import TranslatedGroup, _
from cli.output import Field, format_amount, format_time_ms, format_yes, labelled


@click.group(cls=TranslatedGroup)
def query() -> None:
    """Look up the chain, transactions, accounts and records."""


def _status(value: Any) -> str:
    return _(str(value))


STATUS_FIELDS: list[Field] = [
    ("chain_id", "Chain id", None),
    ("node_name", "Node", None),
    ("height", "Height", None),
    ("latest_block_hash", "Latest block", None),
    ("genesis_hash", "Genesis hash", None),
    ("mempool_size", "Transactions waiting", None),
]
TX_FIELDS: list[Field] = [
    ("status", "Status", _status),
    ("height", "Height", None),
    ("index", "Index in block", None),
    ("block_hash", "Block", None),
    ("reason", "Reason", None),
]
ACCOUNT_FIELDS: list[Field] = [
    ("address", "Address", None),
    ("role", "Role", _status),
    ("nonce", "Transactions sent", None),
    ("pending_txs", "Transactions pending", None),
    ("admitted_height", "Admitted at height", None),
    ("revoked_height", "Revoked at height", None),
]
RECORD_FIELDS: list[Field] = [
    ("record_id", "Record id", None),
    ("creator", "Creator", None),
    ("category", "Category", _status),
    ("doc_hash", "Document SHA-256", None),
    ("amount", "Amount", format_amount),
    ("counterparty", "Counterparty", None),
    ("memo", "Memo", None),
    ("height", "Recorded at height", None),
    ("endorsed_height", "Endorsed at height", None),
]


SEALED_RECORD_FIELDS: list[Field] = [
    ("doc_hash", "Document commitment", None) if name == "doc_hash" else (name, label, render)
    for name, label, render in RECORD_FIELDS
]


@query.command("status")
@node_option
@json_option
def query_status(node_url: str, as_json: bool) -> None:
    """Show the chain id, height and latest block of a node.

    Example: danangchain query status --node http://127.0.0.1:26657 --json
    """
    status = NodeClient(node_url).get("/status")
    emit(as_json, status, labelled(status, STATUS_FIELDS))


@query.command("block")
@click.argument("height", default="latest")
@node_option
@reader_options
@json_option
def query_block(
    height: str,
    node_url: str,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Show the block at HEIGHT (default: the latest); with --from, the private fields of
    the records the key may read.

    Example: danangchain query block 12
    """
    if height != "latest" and not height.isdigit():
        raise click.BadParameter(_("HEIGHT must be a whole number or 'latest'"))
    block = NodeClient(node_url, signer=load_reader(from_key, keystore_dir, password_file)).get(
        f"/blocks/{height}"
    )
    lines = [
        _("block {height} {hash}").format(height=block["height"], hash=block["hash"]),
        f"{_('Time')}: {format_time_ms(block['header']['time_ms'])}",
        _("transactions: {count}").format(count=block["tx_count"]),
    ]
    lines += [
        _("  {tx_id} {kind} from {sender}").format(
            tx_id=t["tx_id"], kind=t["kind"], sender=t["sender"]
        )
        for t in block["txs"]
    ]
    emit(as_json, block, lines)


@query.command("tx")
@click.argument("tx_id")
@node_option
@reader_options
@json_option
def query_tx(
    tx_id: str,
    node_url: str,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Show whether a transaction is pending, committed (where) or rejected (why); with
    --from, the whole transaction, if it concerns the key's member (or it is an auditor's).

    Example: danangchain query tx 3f2a...
    """
    parse_hex_id(tx_id, _("transaction id"))
    state = NodeClient(node_url, signer=load_reader(from_key, keystore_dir, password_file)).get(
        f"/txs/{tx_id}"
    )
    lines = labelled(state, TX_FIELDS)
    tx = state.get("tx")
    if tx is not None and tx["kind"] == "anchor":
        # An anchor says what it anchored: the dataset (or window) and its root.
        lines += [f"{_('Kind')}: {tx['kind']}", f"{_('Sender')}: {tx['sender']}"]
        lines += [f"{name}: {value}" for name, value in tx["body"].items() if value is not None]
    emit(as_json, state, lines)


@query.command("account")
@click.argument("address")
@node_option
@reader_options
@json_option
def query_account(
    address: str,
    node_url: str,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Show a member's role, nonce and records: the member's own key or an auditor's
    signs the read (--from).

    Example: danangchain query account dn1... --from my-house
    """
    parse_address(address)
    account = NodeClient(node_url, signer=load_reader(from_key, keystore_dir, password_file)).get(
        f"/accounts/{address}"
    )
    lines = labelled(account, ACCOUNT_FIELDS)
    if account.get("revoked") and account.get("revoked_height") is None:
        lines.append(f"{_('Revoked')}: {format_yes(True)}")
    lines.append(_("records: {count}").format(count=len(account["records"])))
    lines += [f"  {rid}" for rid in account["records"]]
    emit(as_json, account, lines)


@query.command("record")
@click.argument("record_id")
@node_option
@reader_options
@json_option
def query_record(
    record_id: str,
    node_url: str,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Show a record and whether its counterparty endorsed it: the key of its creator,
    of its counterparty or of an auditor signs the read (--from).

    Example: danangchain query record 3f2a... --from my-house
    """
    parse_hex_id(record_id, _("record id"))
    signer = load_reader(from_key, keystore_dir, password_file)
    record = NodeClient(node_url, signer=signer).get(f"/records/{record_id}")
    if signer is not None:
        from cli.sealed import open_record  # its crypto is loaded when a record is opened

        # The reader's own key opens a sealed record's amount and memo, on this machine.
        record = open_record(record, signer.key)
    # A sealed record's doc_hash is the salted commitment, not the document's SHA-256.
    fields = SEALED_RECORD_FIELDS if isinstance(record.get("sealed"), dict) else RECORD_FIELDS
    lines = labelled(record, fields)
    lines += describe_sealing(record)
    lines += describe_record_changes(record)
    emit(as_json, record, lines)


def describe_sealing(record: dict[str, Any]) -> list[str]:
    """Say whether a record's amount and memo are sealed, opened or erased."""
    sealed = record.get("sealed")
    if not isinstance(sealed, dict):
        return []
    if sealed.get("erased"):
        return [
            _("private content erased at height {height}").format(
                height=sealed.get("erased_height")
            )
        ]
    if sealed.get("opened"):
        return [_("amount and memo: sealed, opened with your key")]
    return [_("amount and memo: sealed (add --from with your key to open them)")]


def describe_record_changes(record: dict[str, Any]) -> list[str]:
    """Say what became of a record since: what it amends or cancels, whether it was
    cancelled, and which records amend it."""
    lines = []
    if record.get("reference"):
        said = _("amends {record}") if record.get("reference_kind") == "amends" else None
        said = said or _("cancels {record}")
        lines.append(said.format(record=record["reference"]))
    if record.get("cancelled"):
        lines.append(_("cancelled at height {height}").format(height=record["cancelled_height"]))
    lines += [
        _("amended by {record}").format(record=amendment)
        for amendment in record.get("amended_by", [])
    ]
    return lines


@query.command("validators")
@click.option(
    "--height",
    type=click.IntRange(1),
    default=None,
    help="The height whose signing set to show (default: the next block's).",
)
@node_option
@json_option
def query_validators(height: int | None, node_url: str, as_json: bool) -> None:
    """Show the validator set that signs a height, and the validator votes pending.

    Example: danangchain query validators --height 120
    """
    path = "/validators" if height is None else f"/validators?height={height}"
    answer = NodeClient(node_url).get(path)
    lines = [
        _("validators of height {height} (quorum {quorum} of {total}):").format(
            height=answer["height"], quorum=answer["quorum"], total=answer["total_power"]
        )
    ]
    lines += [
        f"  {v['name']:<20} {v['public_key']} power {v['power']}" for v in answer["validators"]
    ]
    for vote in answer["pending_votes"]:
        lines.append(
            _("pending: {action} {key} ({voted} of {needed} needed)").format(
                action=vote["action"],
                key=vote["public_key"],
                voted=vote["power_voted"],
                needed=vote["power_needed"],
            )
        )
    emit(as_json, answer, lines)


@query.command("nodes")
@node_option
@json_option
def query_nodes(node_url: str, as_json: bool) -> None:
    """List the node registry at the tip: every validator and admitted full node.

    Example: danangchain query nodes --json
    """
    answer = NodeClient(node_url).get("/nodes")
    lines = [f"{len(answer['nodes'])} nodes at height {answer['height']}"]
    lines += [
        f"  {n['name']} ({n['role']}) {n['public_key'][:16]}… {' '.join(n['p2p_urls'])}"
        for n in answer["nodes"]
    ]
    emit(as_json, answer, lines)


ACCESS_FIELDS: list[Field] = [
    ("time_ms", "Time", format_time_ms),
    ("reader", "Reader", None),
    ("reader_role", "Role", _status),
    ("route", "Read", None),
    ("target", "What", None),
]


@query.command("access-log")
@node_option
@click.option(
    "--from",
    "from_key",
    required=True,
    help="Name or file of the member's key: whose data.",
)
@keystore_option
@password_option
@json_option
def query_access_log(
    node_url: str,
    from_key: str,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Show who read your data through this node, what and when, newest first: every
    signed read by another member (an auditor, a counterparty); your own are not logged.

    Example: danangchain query access-log --from my-house
    """
    signer = load_reader(from_key, keystore_dir, password_file)
    answer = NodeClient(node_url, signer=signer).get("/access-log")
    lines = [
        _("{count} reads of the data of {address}").format(
            count=answer["count"], address=answer["address"]
        )
    ]
    for entry in answer["entries"]:
        lines.append(
            _("  {time} {reader} ({role}) read {route} {target}").format(
                time=format_time_ms(entry["time_ms"]),
                reader=entry["reader"],
                role=_(str(entry["reader_role"])),
                route=_(str(entry["route"])),
                target=entry["target"],
            )
        )
    emit(as_json, answer, lines)
