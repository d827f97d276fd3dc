"""`danangchain watch`: print new blocks and committed transactions as they arrive."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import click

from cli.client import NodeClient, describe_read_refusal, load_reader, reader_options
from cli.common import EXIT_REFUSED, EXIT_USAGE, CliError, json_option, node_option, parse_address
from cli.i18n import TranslatedCommand, _
from cli.output import format_time_ms


def events_url(node_url: str, address: str | None) -> str:
    """Return the websocket URL of a node's /events, with the address filter if any."""
    if not node_url.startswith(("http://", "https://")):
        raise CliError(f"node URL {node_url!r} must start with http:// or https://")
    url = "ws" + node_url.rstrip("/")[len("http") :] + "/events"
    return url if address is None else f"{url}?address={address}"


def describe_event(event: dict[str, Any]) -> str | None:
    """Return one line for a person, or None for events not worth a line."""
    if event.get("type") == "block":
        when = format_time_ms(event["time_ms"])
        proposer = event.get("proposer_name") or event["proposer"][:16]
        return f"block {event['height']} at {when} by {proposer}: {event['tx_count']} txs"
    if event.get("type") == "tx":
        tx = event["tx"]
        line = f"  tx {event['tx_id']} {tx['kind']} from {tx['sender']} (height {event['height']})"
        # Events are public: a record names its category; its memo is the members' own.
        category = tx["body"].get("category")
        return f"{line}: {category}" if category else line
    return None


@click.command("watch", cls=TranslatedCommand)
@node_option
@click.option("--address", help="Only the transactions that concern this address (dn1...).")
@click.option(
    "--count",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many events (default: until Ctrl-C).",
)
@reader_options
@json_option
def watch(
    node_url: str,
    address: str | None,
    count: int | None,
    from_key: str | None,
    keystore_dir: Path | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Print new blocks and committed transactions as they arrive; Ctrl-C ends. Records
    show their category, never their amount or memo; --address, whose dealings are the
    member's own, is signed with the member's key or an auditor's (--from).

    With --json each event is one line of JSON (as sent by the node's /events).

    Example: danangchain watch --node http://127.0.0.1:26657 --address dn1... --from my-house
    """
    if address is not None:
        parse_address(address)
    url = events_url(node_url, address)
    headers: dict[str, str] = {}
    if address is not None:
        if from_key is None:
            raise CliError(
                _("this is a member's data: sign the read with --from KEY (the member's key)")
            )
        signer = load_reader(from_key, keystore_dir, password_file)
        headers = NodeClient(node_url, signer=signer).authorization(url[url.index("/events") :])
    # Ctrl-C is how a person stops watching: not an error.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch(url, headers, count, as_json))


async def _watch(url: str, headers: dict[str, str], count: int | None, as_json: bool) -> None:
    import aiohttp  # loaded by watching, not by --help

    seen = 0
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, headers=headers) as socket,
        ):
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(message.data)
                if event.get("type") == "hello":
                    click.echo(
                        f"watching {event['chain_id']} from height {event['height']}", err=True
                    )
                    continue
                line = json.dumps(event, sort_keys=True) if as_json else describe_event(event)
                if line is not None:
                    click.echo(line)
                seen += 1
                if count is not None and seen >= count:
                    return
    except aiohttp.WSServerHandshakeError as exc:
        # Only a signed subscription (--address) is refused: say by whom and why.
        refusal = describe_read_refusal(exc.status, {"error": exc.status, "message": exc.message})
        if exc.status in (401, 403) and refusal is not None:
            raise CliError(refusal, EXIT_REFUSED if exc.status == 403 else EXIT_USAGE) from None
        raise CliError(f"cannot watch {url}: {exc or type(exc).__name__}", EXIT_USAGE) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise CliError(f"cannot watch {url}: {exc or type(exc).__name__}", EXIT_USAGE) from None
    raise CliError("the node closed the events stream", EXIT_REFUSED)
