"""`danangchain validator propose`: validators vote the validator set on chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.common import CliError, parse_public_key
from cli.consortium import ConsortiumError, read_card
from cli.i18n import TranslatedGroup, _, describe_error
from cli.submit import sign_submit_and_report, submission_options
from danangchain import ed25519
from danangchain.transaction import VALIDATOR_ACTIONS, ValidatorVoteBody


@click.group(cls=TranslatedGroup)
def validator() -> None:
    """Change the validator set by vote (validators)."""


@validator.command("propose")
@click.argument("action", type=click.Choice(VALIDATOR_ACTIONS))
@click.argument("pubkey", required=False)
@click.option(
    "--card",
    "card_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The candidate's node-card.json (add): its key, name and addresses.",
)
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
    pubkey: str | None,
    card_file: Path | None,
    name: str,
    power: int,
    **submission: Any,
) -> None:
    """Vote to add or remove the validator PUBKEY, signed with a current validator's key.

    The change applies once more than 2/3 of the current validators voted for it, and
    takes effect two heights later.

    With --card, the candidate's card gives its key, name and peer URLs, and enters the
    node registry when the vote applies; PUBKEY alone suits a candidate already there.

    Example: danangchain validator propose add --card health/node-card.json
    --from ./net/node0/node_key.json --wait
    """
    card = None
    if card_file is not None:
        if action != "add" or pubkey is not None:
            raise CliError(_("--card goes with 'add' and replaces PUBKEY"))
        try:
            card = read_card(card_file)
        except ConsortiumError as exc:
            raise CliError(describe_error(exc)) from None
        key, name = card.public_key, name or card.name
    elif pubkey is None:
        raise CliError(_("give the validator's PUBKEY, or --card CARD to add one"))
    else:
        key = parse_public_key(pubkey)
    if action == "add" and not ed25519.is_strict_public_key(key):
        raise CliError(_("PUBKEY is not a safe Ed25519 public key"))
    body = ValidatorVoteBody(
        action, key, name if action == "add" else "", power if action == "add" else 1, card
    )
    sign_submit_and_report(body, **submission)
