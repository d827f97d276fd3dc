"""`audit prove --doc --from` and `audit check-proof --doc`: show that a document is the
one a record names. A plain record names the document's SHA-256; a sealed record names a
salted commitment to it, whose salt only the member can make (from its key) and keeps in
its proof file (field `doc_salt`), so the proof file alone, with the document, convinces
anyone, and the chain alone reveals nothing about the document."""

from __future__ import annotations

import json
from pathlib import Path

from cli.common import CliError, hash_document
from cli.i18n import _
from danangchain import ed25519
from danangchain.sealing import (
    SALT_SIZE,
    compute_document_commitment,
    compute_document_salt,
    derive_salt_key,
)
from danangchain.transaction import RecordBody, SealedRecordBody, Transaction


def add_document_salt(
    text: str, tx: Transaction, doc_file: Path, key: ed25519.SigningKey | None
) -> str:
    """Return the proof file's text with the document's salt added (a sealed record), once
    the document is shown to be the one recorded; a plain record's proof is unchanged."""
    digest = hash_document(doc_file)
    body = tx.body
    if isinstance(body, RecordBody):
        if body.doc_hash != digest:
            raise CliError(_("{path} is not the document this record names").format(path=doc_file))
        return text
    if not isinstance(body, SealedRecordBody):
        raise CliError(
            _("--doc applies to records only, this transaction is a {kind}").format(kind=tx.kind)
        )
    if key is None:
        raise CliError(
            _("a sealed record's document salt is made with its creator's key: add --from")
        )
    salt = compute_document_salt(derive_salt_key(key.seed), digest)
    if compute_document_commitment(salt, digest) != body.doc_commitment:
        raise CliError(
            _("{path} is not the document this record names (or --from is not its creator)").format(
                path=doc_file
            )
        )
    document = json.loads(text)
    document["doc_salt"] = salt.hex()
    return json.dumps(document, indent=2) + "\n"


def check_document(text: str, tx: Transaction, doc_file: Path) -> str | None:
    """Return why the document is not the one the proven record names, or None if it is."""
    digest = hash_document(doc_file)
    body = tx.body
    if isinstance(body, RecordBody):
        return None if body.doc_hash == digest else _("the document is not the one recorded")
    if not isinstance(body, SealedRecordBody):
        return _("--doc applies to records only, this transaction is a {kind}").format(kind=tx.kind)
    try:
        salt = bytes.fromhex(json.loads(text)["doc_salt"])
    except (KeyError, TypeError, ValueError):
        salt = b""
    if len(salt) != SALT_SIZE:
        return _(
            "the proof file has no document salt: make it with "
            "'audit prove ID --doc FILE --from KEY'"
        )
    if compute_document_commitment(salt, digest) != body.doc_commitment:
        return _("the document is not the one recorded")
    return None
