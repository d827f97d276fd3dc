"""`danangchain node start`: run a node in the foreground."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from cli.common import CliError, password_option, read_password
from danangchain.errors import KeystoreError
from node.config import ConfigError
from node.run import run_node
from node.store import StoreError


@click.group()
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
    password = read_password(password_file)
    try:
        run_node(home, password)
    except (ConfigError, StoreError) as exc:
        raise CliError(str(exc)) from None
    except KeystoreError as exc:
        raise CliError(f"cannot unlock the node key: {exc}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot start the node: {exc}") from None
