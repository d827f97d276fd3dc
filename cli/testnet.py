"""`danangchain testnet DIR`: run every node of a local network in the foreground."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path

import click

from cli.common import CliError, password_option, read_password
from cli.i18n import TranslatedCommand, _, describe_error
from cli.localnet import (
    describe_exit,
    start_node_process,
    stop_node_process,
    wait_until_serving,
)
from node.config import ConfigError, load_config


def find_homes(folder: Path) -> list[Path]:
    """Return the node homes (folders with a config.toml) of a network folder, in order."""
    homes = sorted(
        (p.parent for p in folder.glob("*/config.toml")), key=lambda p: (len(p.name), p.name)
    )
    if not homes:
        raise CliError(
            _("{folder} holds no node homes; make one with 'danangchain network init'").format(
                folder=folder
            )
        )
    return homes


def start_all(
    homes: list[Path], password_file: Path, announce: bool = True, detach: bool = False
) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """Start one process per home and wait until each serves its API."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for home in homes:
            config = load_config(home)
            process = start_node_process(home, password_file, home / "node.log", detach)
            started.append((config.api_url, process))
        for (url, process), home in zip(started, homes, strict=True):
            wait_until_serving(process, url, home / "node.log")
            if announce:
                click.echo(url)
    except (CliError, ConfigError):
        for _url, process in started:
            stop_node_process(process)
        raise
    return started


@click.command(cls=TranslatedCommand)
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@password_option
def testnet(folder: Path, password_file: Path | None) -> None:
    """Start every node of the network in FOLDER, each as its own process, print each API
    URL as it comes up, and stop them all on Ctrl-C. Logs go to each home's node.log.

    Example: danangchain testnet ./mynet --password-file pw.txt
    """
    homes = find_homes(folder)
    password = read_password(password_file)
    with tempfile.TemporaryDirectory(prefix="danangchain-testnet-") as secrets:
        secret = Path(secrets) / "password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        try:
            nodes = start_all(homes, secret)
        except ConfigError as exc:
            raise CliError(describe_error(exc)) from None
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            while True:
                for (url, process), home in zip(nodes, homes, strict=True):
                    if process.poll() is not None:
                        exited = describe_exit(process, home / "node.log")
                        raise CliError(f"{url}: {exited}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            click.echo(_("stopping"), err=True)
        finally:
            for _url, process in nodes:
                stop_node_process(process)
