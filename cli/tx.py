"""`danangchain tx record|endorse`: households and businesses write to the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.common import CliError, hash_document, parse_address, parse_hex_id
from cli.i18n import TranslatedGroup, _
from cli.sealed import make_record_sealer
from cli.submit import sign_submit_and_report, submission_options
from danangchain.sealing import PrivateFields
from danangchain.transaction import (
    CATEGORIES,
    CATEGORIES_WITHOUT_DOCUMENT,
    MAX_MEMO_SIZE,
    EndorseBody,
    EraseBody,
    RecordBody,
)


@click.group(cls=TranslatedGroup)
def tx() -> None:
    """Record documents and transactions, and endorse records about you."""


@tx.command("record")
@click.option("--category", type=click.Choice(CATEGORIES), required=True)
@click.option(
    "--doc",
    "doc_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The document; only its SHA-256 goes on the ledger (a payment may have none).",
)
@click.option("--doc-hash", help="The document's SHA-256 in hex, instead of --doc.")
@click.option("--amount", type=click.IntRange(0, 10**18), help="Amount in VND (whole dong).")
@click.option("--counterparty", help="The member the record is about (dn1...).")
@click.option("--memo", default="", help=f"A short note (at most {MAX_MEMO_SIZE} bytes).")
@click.option("--amends", help="Id of your earlier record that this one amends.")
@click.option("--cancels", help="Id of your earlier record that this one cancels.")
@click.option(
    "--public",
    is_flag=True,
    help="Record the amount, memo and document hash in the clear, readable by every node "
    "(default: sealed, readable by you, the counterparty and the auditors).",
)
@submission_options
def tx_record(
    category: str,
    doc_file: Path | None,
    doc_hash: str | None,
    amount: int | None,
    counterparty: str | None,
    memo: str,
    amends: str | None,
    cancels: str | None,
    public: bool,
    **submission: Any,
) -> None:
    """Record a document (by its hash) or a transaction on the ledger.

    Example: danangchain tx record --from shop --category invoice --doc inv.pdf
    --amount 1500000 --counterparty dn1... --wait
    """
    if doc_file is not None and doc_hash is not None:
        raise CliError(_("give exactly one of --doc FILE or --doc-hash HEX"))
    if doc_file is None and doc_hash is None and category not in CATEGORIES_WITHOUT_DOCUMENT:
        raise CliError(
            _(
                "a record of category {category} needs its document: "
                "give --doc FILE or --doc-hash HEX"
            ).format(category=category)
        )
    if amends and cancels:
        raise CliError(_("give at most one of --amends or --cancels"))
    if len(memo.encode()) > MAX_MEMO_SIZE:
        raise CliError(
            _(
                "--memo is {length} bytes, the limit is {size} bytes ({characters} characters: "
                "a Vietnamese letter with a diacritic takes 2 or 3 bytes)"
            ).format(length=len(memo.encode()), size=MAX_MEMO_SIZE, characters=len(memo))
        )
    digest = (
        hash_document(doc_file)
        if doc_file
        else parse_hex_id(doc_hash, "--doc-hash")
        if doc_hash is not None
        else None
    )
    reference = amends or cancels
    body = RecordBody(
        category=category,
        doc_hash=digest,
        amount=amount,
        counterparty=parse_address(counterparty) if counterparty else None,
        memo=memo,
        reference=parse_hex_id(reference, _("record id")) if reference else None,
        reference_kind=("amends" if amends else "cancels") if reference else None,
    )
    if public:
        sign_submit_and_report(body, **submission)
        return
    # Sealed (the default): the body above only names the request in the outbox; the
    # signed body carries commitments, and the amount and memo travel encrypted beside it.
    sealer = make_record_sealer(
        PrivateFields(amount, memo),
        category,
        digest,
        body.counterparty,
        body.reference,
        body.reference_kind,
    )
    sign_submit_and_report(body, make_sealer=sealer, **submission)


@tx.command("endorse")
@click.argument("record_id")
@submission_options
def tx_endorse(
    record_id: str,
    **submission: Any,
) -> None:
    """Endorse RECORD_ID, a record that names you as its counterparty.

    Example: danangchain tx endorse 3f2a... --from household --wait
    """
    body = EndorseBody(parse_hex_id(record_id, _("record id")))
    sign_submit_and_report(body, **submission)


@tx.command("erase")
@click.argument("record_id")
@submission_options
def tx_erase(
    record_id: str,
    **submission: Any,
) -> None:
    """Erase the private content of RECORD_ID, a sealed record, for good: every node
    deletes it and keeps a tombstone; the chain still verifies. By its creator, or a
    registrar on a lawful request.

    Example: danangchain tx erase 3f2a... --from shop --wait
    """
    body = EraseBody(parse_hex_id(record_id, _("record id")))
    sign_submit_and_report(body, **submission)
