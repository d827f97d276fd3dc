"""Start and stop local node processes: used by quickstart and the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cli.client import NodeClient
from cli.common import CliError


def find_free_port_pair() -> int:
    """Return a port p on 127.0.0.1 such that p and p+1 are both free now."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65000:
            continue
        try:
            with socket.socket() as second:
                second.bind(("127.0.0.1", port + 1))
            return int(port)
        except OSError:
            continue
    raise CliError("cannot find two free ports on 127.0.0.1")


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
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
            raise CliError(f"the node exited with code {process.returncode}: {' '.join(tail)}")
        try:
            return client.get("/status")
        except CliError:
            time.sleep(0.1)
    raise CliError(f"the node at {url} did not answer within {timeout_s:g}s")


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
