"""Real node processes on 127.0.0.1, driven through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli.localnet import (
    find_free_ports,
    start_node_process,
    stop_node_process,
    wait_until_serving,
)

PASSWORD = "correct horse battery staple"
# Files tests keep for people to look at (screenshots): in the checkout, outside git, and
# listed at the end of the pytest run.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_kept: list[Path] = []


def keep_artifact(name: str) -> Path:
    """Return the path a test writes a kept file to; the run's summary lists it."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    _kept.append(path)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the files tests kept, with their full paths."""
    kept = [path for path in _kept if path.exists()]
    if kept:
        terminalreporter.write_sep("-", "test artifacts")
        for path in kept:
            terminalreporter.write_line(str(path))


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the danangchain CLI as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def run_cli_json(*args: str) -> Any:
    """Run a CLI command with --json that must succeed, and parse its output."""
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@dataclass
class LocalNode:
    """A one-validator network in a temporary folder and its running node process."""

    folder: Path
    password_file: Path
    made: dict[str, Any]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return Path(self.made["nodes"][0]["home"])

    @property
    def url(self) -> str:
        return str(self.made["nodes"][0]["api_url"])

    @property
    def keystore(self) -> Path:
        return Path(self.made["keystore"])

    def start(self) -> subprocess.Popen[bytes]:
        log_path = self.folder / "node.log"
        process = start_node_process(self.home, self.password_file, log_path)
        self.processes.append(process)
        wait_until_serving(process, self.url, log_path)
        return process

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a CLI command against this node; signing commands get its keystore too."""
        signing = args[0] in ("tx", "member")
        extra = ["--keystore", str(self.keystore), "--password-file", str(self.password_file)]
        return run_cli(*args, "--node", self.url, *(extra if signing else []))


@pytest.fixture
def local_node(tmp_path: Path) -> Iterator[LocalNode]:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    made = run_cli_json(
        "network",
        "init",
        str(tmp_path / "net"),
        "--validators",
        "1",
        "--base-port",
        str(find_free_ports()),
        "--password-file",
        str(password_file),
    )
    node = LocalNode(tmp_path, password_file, made)
    node.start()
    yield node
    for process in node.processes:
        stop_node_process(process)
