"""Local networks: a temporary network folder, and starting and stopping node processes.
Used by quickstart, bench, testnet and the end-to-end tests."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.client import NodeClient
from cli.common import CliError
from cli.i18n import _
from cli.network import init_network
from node.config import CONFIG_FILE, load_config, render_config

PORT_RANGE = (20_000, 32_000)


def find_free_ports(nodes: int = 1) -> int:
    """Return a base port p on 127.0.0.1 such that p .. p+2*nodes-1 are all free now
    (node i uses p+2i for its API and p+2i+1 for its peers).

    Ports are drawn below the kernel's ephemeral range, so that a node restarted later
    does not find its port taken by some process's outgoing connection.
    """
    low, high = PORT_RANGE
    for _attempt in range(500):
        base = random.randrange(low, high - 2 * nodes)
        if all(_is_free(base + offset) for offset in range(2 * nodes)):
            return base
    raise CliError(
        _("cannot find {count} free ports in a row on 127.0.0.1").format(count=2 * nodes)
    )


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_node_process(
    home: Path, password_file: Path, log_path: Path, detach: bool = False
) -> subprocess.Popen[bytes]:
    """Start `danangchain node start` for a home as a child process, logging to a file."""
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "node",
        "start",
        "--home",
        str(home),
        "--password-file",
        str(password_file),
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )


def wait_until_serving(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float = 30.0
) -> dict[str, object]:
    """Poll /status until the node answers, failing early if its process exits."""
    client = NodeClient(url, timeout_s=2.0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CliError(describe_exit(process, log_path))
        try:
            return client.get("/status")
        except CliError:
            time.sleep(0.1)
    raise CliError(
        _("the node at {url} did not answer within {seconds}s").format(
            url=url, seconds=f"{timeout_s:g}"
        )
    )


def describe_exit(process: subprocess.Popen[bytes], log_path: Path) -> str:
    """Say that a node exited, with its code and the reason its log ends with."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    # The node speaks the language it inherited from this process (LANGUAGE).
    prefixes = ("error: ", _("error") + ": ")
    reason = next((line for line in reversed(lines) if line.startswith(prefixes)), None)
    tail = reason or (lines[-1] if lines else _("its log is empty"))
    return _("the node exited with code {code}: {reason} (see {log})").format(
        code=process.returncode, reason=tail, log=log_path
    )


def stop_node_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    """Stop a node with SIGTERM (then SIGKILL after a deadline) and return its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return int(process.returncode)


@dataclass(frozen=True)
class TemporaryNetwork:
    """A network made by `network init` in a temporary folder, with a random password."""

    folder: Path
    password: str
    password_file: Path
    made: dict[str, Any]

    @property
    def homes(self) -> list[Path]:
        """The node homes, validators first."""
        return [Path(node["home"]) for node in self.made["nodes"]]


def set_verify_workers(home: Path, workers: int) -> None:
    """Rewrite a node home's config with its signature workers set."""
    config = load_config(home)
    (home / CONFIG_FILE).write_text(
        render_config(dataclasses.replace(config, verify_workers=workers))
    )


@contextlib.contextmanager
def temporary_network(
    prefix: str,
    validators: int,
    chain_id: str,
    full_nodes: int = 0,
    keep: bool = False,
    verify_workers: int | None = None,
) -> Iterator[TemporaryNetwork]:
    """Make a network in a new temporary folder; remove the folder afterwards unless `keep`.
    `verify_workers` sets every node's [node] verify_workers (None: leave "auto")."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        password = os.urandom(16).hex()
        password_file = folder / "password"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        made = init_network(
            folder / "net",
            validators,
            chain_id,
            find_free_ports(validators + full_nodes),
            password,
            full_nodes=full_nodes,
        )
        network = TemporaryNetwork(folder, password, password_file, made)
        if verify_workers is not None:
            for home in network.homes:
                set_verify_workers(home, verify_workers)
        yield network
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
