"""`danangchain testnet` and `node start`: why a node exited, and that it stopped."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from cli.localnet import find_free_ports, start_node_process, stop_node_process, wait_until_serving
from tests.e2e.conftest import PASSWORD, run_cli

pytestmark = pytest.mark.e2e


def one_validator_network(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Make a one-validator network with network init; return the password file and what
    it printed."""
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    base = find_free_ports(1)  # below the ephemeral range: see find_free_ports
    made = run_cli(
        "network", "init", str(tmp_path / "net"), "--validators", "1",
        "--base-port", str(base), "--password-file", str(password_file), "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return password_file, json.loads(made.stdout)


def test_a_node_whose_port_is_taken_is_reported_with_the_reason_from_its_log(
    tmp_path: Path,
) -> None:
    password_file, made = one_validator_network(tmp_path)
    api_url = made["nodes"][0]["api_url"]
    port = int(api_url.rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_cli(
            "testnet", str(tmp_path / "net"), "--password-file", str(password_file), timeout=60
        )
    assert result.returncode == 2
    assert result.stdout == ""  # no URL printed for a node that never answered
    [line] = result.stderr.strip().splitlines()
    assert "exited with code" in line and "address already in use" in line.lower(), line
    assert "node.log" in line


def test_node_start_logs_that_it_stopped(tmp_path: Path) -> None:
    password_file, made = one_validator_network(tmp_path)
    node = made["nodes"][0]
    home, log = Path(node["home"]), Path(node["home"]) / "node.log"
    process = start_node_process(home, password_file, log)
    try:
        wait_until_serving(process, node["api_url"], log)
    finally:
        code = stop_node_process(process)
    assert code == 0
    assert log.read_text().strip().splitlines()[-1].endswith("node node0 stopped")
