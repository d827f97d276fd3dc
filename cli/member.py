"""`danangchain member admit|revoke`: a registrar manages who may use the ledger."""

from __future__ import annotations

from typing import Any

import click

from cli.common import CliError, parse_address, parse_public_key
from cli.i18n import TranslatedGroup, _
from cli.submit import sign_submit_and_report, submission_options
from danangchain.sealing import is_valid_encryption_key
from danangchain.transaction import (
    MAX_AUDIT_KEYS,
    ROLES,
    AuditKeysBody,
    MemberAdmitBody,
    MemberRevokeBody,
)


@click.group(cls=TranslatedGroup)
def member() -> None:
    """Admit and revoke members (registrars)."""


@member.command("admit")
@click.argument("address")
@click.option("--role", type=click.Choice(ROLES), required=True, help="The member's role.")
@click.option(
    "--public-key",
    default=None,
    help="Bind this new public key (hex) to the member, e.g. after a lost key; "
    "the old key is refused from then on.",
)
@click.option(
    "--encryption-key",
    default=None,
    help="Publish the member's encryption key (hex, 'keys show' prints it): sealed records "
    "naming the member are encrypted to it. With --public-key, the new key's.",
)
@submission_options
def member_admit(
    address: str,
    role: str,
    public_key: str | None,
    encryption_key: str | None,
    **submission: Any,
) -> None:
    """Admit ADDRESS with a role; signed by a registrar's key.

    Example: danangchain member admit dn1... --role household --from registrar --wait
    """
    new_key = parse_public_key(public_key) if public_key else None
    published = parse_encryption_key(encryption_key) if encryption_key else None
    body = MemberAdmitBody(parse_address(address), role, new_key, published)
    sign_submit_and_report(body, **submission)


def parse_encryption_key(text: str, option: str = "--encryption-key") -> bytes:
    """Parse an X25519 public key in hex; a malformed or unusable one is a usage error."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if not is_valid_encryption_key(key):
        raise CliError(
            _("{option} must be an X25519 public key: 64 hex digits").format(option=option)
        )
    return key


@member.command("audit-keys")
@click.argument("keys", nargs=-1, required=True)
@submission_options
def member_audit_keys(
    keys: tuple[str, ...],
    **submission: Any,
) -> None:
    """Set the network's audit keys to KEYS (the auditors' encryption keys, hex): every
    sealed record from then on is also encrypted to each. Signed by a registrar.

    Example: danangchain member audit-keys 9c1f... --from registrar --wait
    """
    parsed = sorted({parse_encryption_key(key, "KEYS") for key in keys})
    if len(parsed) > MAX_AUDIT_KEYS:
        raise CliError(_("give at most {limit} audit keys").format(limit=MAX_AUDIT_KEYS))
    sign_submit_and_report(AuditKeysBody(tuple(parsed)), **submission)


@member.command("revoke")
@click.argument("address")
@submission_options
def member_revoke(
    address: str,
    **submission: Any,
) -> None:
    """Revoke ADDRESS; it can no longer submit transactions.

    Example: danangchain member revoke dn1... --from registrar --wait
    """
    body = MemberRevokeBody(parse_address(address))
    sign_submit_and_report(body, **submission)
