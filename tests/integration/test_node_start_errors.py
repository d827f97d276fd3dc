"""`node start` refuses a home it cannot run in one line, exit 2, and leaves a running node be.

These start real node processes on 127.0.0.1, from a home made by `network init`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.client import NodeClient
from cli.localnet import (
    find_free_ports,
    start_node_process,
    stop_node_process,
    wait_until_serving,
)
from cli.network import init_network
from node.config import CONFIG_FILE

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


def node_start(home: Path, password_file: Path) -> subprocess.CompletedProcess[str]:
    """Run `danangchain node start` in the foreground; it must give up within a minute."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "node", "start", "--home", str(home)]
        + ["--password-file", str(password_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LANG": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, Path, str]:
    """Return the home of a one-validator network, its password file and its API URL."""
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    made = init_network(tmp_path / "net", 1, "danang-errors", find_free_ports(), PASSWORD)
    node = made["nodes"][0]
    return Path(node["home"]), password_file, str(node["api_url"])


@pytest.fixture
def running(tmp_path: Path, home: tuple[Path, Path, str]) -> Iterator[tuple[Path, Path, str]]:
    """Start the home's node and stop it when the test ends."""
    node_home, password_file, url = home
    log_path = tmp_path / "node.log"
    process = start_node_process(node_home, password_file, log_path)
    try:
        wait_until_serving(process, url, log_path)
        yield home
    finally:
        stop_node_process(process)


def test_a_second_start_on_a_running_home_fails_in_one_line_and_the_node_serves_on(
    running: tuple[Path, Path, str],
) -> None:
    node_home, password_file, url = running
    second = node_start(node_home, password_file)
    assert second.returncode == 2, second.stderr
    assert len(second.stderr.splitlines()) == 1, second.stderr
    assert "is in use" in second.stderr
    assert NodeClient(url).get("/status")["height"] >= 0


def test_a_second_start_on_a_running_home_says_a_node_is_already_running(
    running: tuple[Path, Path, str],
) -> None:
    node_home, password_file, _ = running
    second = node_start(node_home, password_file)
    assert second.returncode == 2
    assert "a node is already running on this home" in second.stderr


@pytest.mark.parametrize("section", ["api", "p2p"])
def test_a_host_that_does_not_resolve_is_named_by_node_start(
    home: tuple[Path, Path, str], section: str
) -> None:
    node_home, password_file, _ = home
    config = node_home / CONFIG_FILE
    text = config.read_text()
    start = text.index(f"[{section}]")
    config.write_text(
        text[:start] + text[start:].replace('host = "127.0.0.1"', 'host = "node0.invalid"', 1)
    )
    result = node_start(node_home, password_file)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {config}: [{section}] host 'node0.invalid' does not resolve")
