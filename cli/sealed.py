"""Sealed records on the member's machine: encrypt a record's amount and memo to the
parties entitled to read them before signing, and open a record's sealed content locally
with the member's own encryption key (no node ever sees a private key or the plaintext).

The encryption key is derived from the signing key's seed (danangchain/sealing.py), so a
keystore unlocked to sign also opens sealed records."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cli.client import NodeClient, NotFound
from cli.common import EXIT_REFUSED, CliError
from cli.i18n import _, describe_error
from cli.submit import Sealer
from danangchain import ed25519
from danangchain.address import decode_address, encode_address
from danangchain.errors import AddressError, SealedError
from danangchain.sealing import (
    Binding,
    PrivateFields,
    compute_content_hash,
    compute_document_commitment,
    compute_document_salt,
    decode_envelope,
    derive_encryption_key,
    derive_salt_key,
    encryption_public_key,
    open_envelope,
    seal,
)
from danangchain.transaction import KIND_SEALED_RECORD, SealedRecordBody


def own_encryption_public_key(key: ed25519.SigningKey) -> bytes:
    """Return the X25519 public key a member's signing key derives."""
    return encryption_public_key(derive_encryption_key(key.seed))


def document_salt(key: ed25519.SigningKey, doc_hash: bytes) -> bytes:
    """Return the member's salt for a document: the same document always gets the same one."""
    return compute_document_salt(derive_salt_key(key.seed), doc_hash)


def find_recipients(
    client: NodeClient, key: ed25519.SigningKey, counterparty: bytes | None
) -> list[bytes]:
    """Return the keys a record is sealed to: the creator's own, the counterparty's
    published key and every audit key in state; refuse a counterparty without a key."""
    recipients = [own_encryption_public_key(key)]
    if counterparty is not None:
        address = encode_address(counterparty)
        try:
            account = client.get(f"/encryption-keys/{address}")
        except NotFound:
            raise CliError(
                _("counterparty {address} is not a member").format(address=address), EXIT_REFUSED
            ) from None
        published = account.get("encryption_key")
        if not published:
            raise CliError(
                _(
                    "counterparty {address} has published no encryption key, so it could not "
                    "read a sealed record: ask a registrar to publish it (member admit "
                    "--encryption-key), or record in the clear with --public"
                ).format(address=address),
                EXIT_REFUSED,
            )
        recipients.append(bytes.fromhex(published))
    recipients += [bytes.fromhex(audit) for audit in client.get("/status").get("audit_keys", [])]
    return recipients


def make_record_sealer(
    fields: PrivateFields,
    category: str,
    doc_hash: bytes | None,
    counterparty: bytes | None,
    reference: bytes | None,
    reference_kind: str | None,
) -> Callable[[NodeClient, ed25519.SigningKey], Sealer]:
    """Return what makes a sealed record's body and encrypted content for a signer."""

    def make(client: NodeClient, key: ed25519.SigningKey) -> Sealer:
        recipients = find_recipients(client, key, counterparty)
        commitment = (
            None
            if doc_hash is None
            else compute_document_commitment(document_salt(key, doc_hash), doc_hash)
        )

        def sealer(chain_id: str, address: str, nonce: int) -> tuple[SealedRecordBody, bytes]:
            binding = Binding(chain_id, decode_address(address), nonce, KIND_SEALED_RECORD)
            try:
                envelope = seal(fields, binding, recipients, os.urandom)
            except SealedError as exc:
                raise CliError(describe_error(exc), EXIT_REFUSED) from None
            body = SealedRecordBody(
                category=category,
                doc_commitment=commitment,
                content_hash=compute_content_hash(envelope),
                counterparty=counterparty,
                reference=reference,
                reference_kind=reference_kind,
            )
            return body, envelope

        return sealer

    return make


def open_record(record: dict[str, Any], key: ed25519.SigningKey) -> dict[str, Any]:
    """Return a record as the node served it with its sealed amount and memo opened by
    the member's key (a plain record comes back as it is); a record erased, whose content
    this node lacks, or that does not open with this key is a one-line error, exit 1."""
    sealed = record.get("sealed")
    if not isinstance(sealed, dict):
        return record
    record_id = record.get("record_id", "?")
    if sealed.get("erased"):
        raise CliError(
            _(
                "record {record_id} was erased at height {height}: its private content is "
                "gone for good"
            ).format(record_id=record_id, height=sealed.get("erased_height")),
            EXIT_REFUSED,
        )
    try:
        data = bytes.fromhex(sealed["envelope"] or "")
        creator = decode_address(str(record["creator"]))
        content_hash = bytes.fromhex(sealed["content_hash"])
    except (KeyError, TypeError, ValueError, AddressError):
        data, creator, content_hash = b"", b"", b""
    if not data:
        raise CliError(
            _("this node does not hold the sealed content of record {record_id}").format(
                record_id=record_id
            ),
            EXIT_REFUSED,
        )
    try:
        if compute_content_hash(data) != content_hash:
            raise SealedError.of("the sealed content does not open: changed, or moved")
        envelope = decode_envelope(data)
        if envelope.binding.creator != creator:
            raise SealedError.of("the sealed content does not open: changed, or moved")
        fields = open_envelope(envelope, derive_encryption_key(key.seed))
    except SealedError as exc:
        raise CliError(
            _("the sealed content of record {record_id} does not open: {reason}").format(
                record_id=record_id, reason=describe_error(exc)
            ),
            EXIT_REFUSED,
        ) from None
    return record | {
        "amount": fields.amount,
        "memo": fields.memo,
        "sealed": {**sealed, "opened": True},
    }
