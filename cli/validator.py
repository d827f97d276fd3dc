"""`danangchain validator propose`: validators vote the validator set on chain."""

from __future__ import annotations

from typing import Any

import click

from cli.common import CliError, parse_public_key
from cli.submit import sign_submit_and_report, submission_options
from danangchain import ed25519
from danangchain.transaction import VALIDATOR_ACTIONS, ValidatorVoteBody


@click.group()
def validator() -> None:
    """Change the validator set by vote (validators)."""


@validator.command("propose")
@click.argument("action", type=click.Choice(VALIDATOR_ACTIONS))
@click.argument("pubkey")
@click.option("--name", default="", help="A readable name for a validator being added.")
@click.option(
    "--power",
    type=click.IntRange(1, 2**32),
    default=1,
    show_default=True,
    help="Voting power of a validator being added.",
)
@submission_options
def validator_propose(
    action: str,
    pubkey: str,
    name: str,
    power: int,
    **submission: Any,
) -> None:
    """Vote to add or remove the validator PUBKEY, signed with a current validator's key.

    The change applies once more than 2/3 of the current validators voted for it, and
    takes effect two heights later.

    Example: danangchain validator propose add 3f2a... --name "Dept. of Finance"
    --from ./net/node0/node_key.json --wait
    """
    key = parse_public_key(pubkey)
    if action == "add" and not ed25519.is_strict_public_key(key):
        raise CliError("PUBKEY is not a safe Ed25519 public key")
    body = ValidatorVoteBody(
        action, key, name if action == "add" else "", power if action == "add" else 1
    )
    sign_submit_and_report(body, **submission)
