"""`danangchain member admit|revoke`: a registrar manages who may use the ledger."""

from __future__ import annotations

from typing import Any

import click

from cli.common import parse_address, parse_public_key
from cli.i18n import TranslatedGroup
from cli.submit import sign_submit_and_report, submission_options
from danangchain.transaction import ROLES, MemberAdmitBody, MemberRevokeBody


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
@submission_options
def member_admit(
    address: str,
    role: str,
    public_key: str | None,
    **submission: Any,
) -> None:
    """Admit ADDRESS with a role; signed by a registrar's key.

    Example: danangchain member admit dn1... --role household --from registrar --wait
    """
    new_key = parse_public_key(public_key) if public_key else None
    body = MemberAdmitBody(parse_address(address), role, new_key)
    sign_submit_and_report(body, **submission)


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
