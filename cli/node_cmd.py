"""`danangchain node start`: run a node in the foreground."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import click

from cli.client import NodeClient
from cli.common import (
    EXIT_REFUSED,
    CliError,
    emit,
    json_option,
    node_option,
    password_option,
    read_password,
)
from cli.i18n import TranslatedGroup, _, describe_error
from cli.progress import Advance, progress
from danangchain.errors import KeystoreError
from node.config import DEFAULT_MAX_BLOCKS_BEHIND, ConfigError
from node.storage.store import StoreError


@click.group(cls=TranslatedGroup)
def node() -> None:
    """Run a node (operators)."""


@node.command("start")
@click.option(
    "--home",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="The node's home folder, as made by 'network init'.",
)
@password_option
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def node_start(home: Path, password_file: Path | None, log_level: str) -> None:
    """Start the node whose home is DIR and serve its API until Ctrl-C or SIGTERM.

    Example: danangchain node start --home ./mynet/node0 --password-file pw.txt
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from node.wiring import NodeStopped, run_node  # the node's server: only to run one

    password = read_password(password_file)
    try:
        run_node(home, password)
    except (ConfigError, StoreError) as exc:
        raise CliError(describe_error(exc)) from None
    except NodeStopped as exc:
        raise CliError(describe_error(exc), EXIT_REFUSED) from None
    except KeystoreError as exc:
        raise CliError(
            _("cannot unlock the node key: {reason}").format(reason=describe_error(exc))
        ) from None
    except ValueError as exc:
        raise CliError(describe_error(exc)) from None
    except OSError as exc:
        raise CliError(_("cannot start the node: {reason}").format(reason=exc)) from None


@node.command("wait-synced")
@node_option
@click.option(
    "--max-blocks-behind",
    type=click.IntRange(0),
    default=DEFAULT_MAX_BLOCKS_BEHIND,
    show_default=True,
    help="Synced means at most this many blocks behind the highest peer.",
)
@click.option(
    "--min-peers",
    type=click.IntRange(0),
    default=None,
    help="Peers that must answer (default: 1 if the node has peers, else 0).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0),
    default=600.0,
    show_default=True,
    help="Give up after this many seconds (exit code 1).",
)
@json_option
def node_wait_synced(
    node_url: str, max_blocks_behind: int, min_peers: int | None, timeout_s: float, as_json: bool
) -> None:
    """Wait until a node has caught up with its peers, as its /readiness reports it.

    A node that is still starting is waited for too. Exit code 0 once synced, 1 if the
    deadline passes first; a progress bar of the blocks fetched shows on a terminal.
    Example: danangchain node wait-synced --node http://127.0.0.1:26657 --timeout 300
    """
    query = f"/readiness?max_blocks_behind={max_blocks_behind}"
    if min_peers is not None:
        query += f"&min_peers={min_peers}"
    started = time.monotonic()
    readiness = wait_until_ready(NodeClient(node_url, timeout_s=5.0), query, timeout_s)
    readiness["waited_s"] = round(time.monotonic() - started, 3)
    emit(
        as_json,
        readiness,
        [
            _(
                "synced at height {height}, {behind} blocks behind, "
                "{peers} peers answering ({seconds}s)"
            ).format(
                height=readiness["height"],
                behind=readiness["blocks_behind"],
                peers=readiness["peers_answering"],
                seconds=f"{readiness['waited_s']:.1f}",
            )
        ],
    )


def wait_until_ready(client: NodeClient, query: str, timeout_s: float) -> dict[str, Any]:
    """Poll /readiness until it answers 200; the bar covers the blocks behind at first sight."""
    deadline = time.monotonic() + timeout_s
    reason = _("no answer yet")
    with contextlib.ExitStack() as stack:
        advance: Advance | None = None
        shown = 0
        while True:
            try:
                status, readiness = client.probe(query)
            except CliError as exc:  # still starting: keep asking until the deadline
                status, readiness, reason = 0, {}, exc.message
            if status == 200:
                return readiness
            if status not in (0, 503):
                raise CliError(
                    _("the node answered {status}: {message}").format(
                        status=status, message=readiness.get("message", readiness)
                    )
                )
            if readiness:
                reason = "; ".join(readiness.get("reasons", [])) or _("not ready")
                height = int(readiness.get("height", 0))
                if advance is None:
                    shown = height
                    target = height + int(readiness.get("blocks_behind", 0))
                    advance = stack.enter_context(progress(target - height, _("syncing")))
                advance(max(0, height - shown))
                shown = max(shown, height)
            if time.monotonic() >= deadline:
                raise CliError(
                    _("not synced after {seconds}s: {reason}").format(
                        seconds=f"{timeout_s:g}", reason=reason
                    ),
                    EXIT_REFUSED,
                )
            time.sleep(0.5)
