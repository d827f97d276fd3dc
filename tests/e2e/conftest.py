"""Real node processes on 127.0.0.1, driven through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli.client import CliError, NodeClient
from cli.localnet import (
    find_free_ports,
    start_node_process,
    stop_node_process,
    wait_until_serving,
)
from cli.network import init_network
from danangchain import ed25519
from danangchain.transaction import RecordBody, encode_transaction, sign_transaction
from node.keyfile import read_keystore, unlock_key

PASSWORD = "correct horse battery staple"
# Files tests keep for people to look at (screenshots): in the checkout, outside git, and
# listed at the end of the pytest run.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_kept: list[Path] = []


def fetch(url: str) -> tuple[int, str]:
    """GET a URL without credentials; return the status and the body's text."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


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
        """Run a CLI command against this node; signing commands (and reads signed with
        --from) get its keystore too."""
        signing = args[0] in ("tx", "member") or "--from" in args
        extra = ["--keystore", str(self.keystore), "--password-file", str(self.password_file)]
        return run_cli(*args, "--node", self.url, *(extra if signing else []))

    def signing_options(self, name: str) -> list[str]:
        """Return the options that sign a command (or a read) with this keystore's `name`."""
        return [
            "--from", name, "--keystore", str(self.keystore), "--password-file",
            str(self.password_file),
        ]  # fmt: skip

    def admit(self, name: str, role: str) -> str:
        """Make a key `name` in the keystore and have the registrar admit it with a role;
        return its address."""
        from danangchain.address import compute_address, encode_address
        from node.keyfile import generate_signing_key, save_key

        key = generate_signing_key()
        save_key(self.keystore / f"{name}.json", name, key, PASSWORD, kdf_n=2**10)
        address = encode_address(compute_address(key.public_key))
        admitted = self.cli(
            "member", "admit", address, "--role", role, "--from", "registrar", "--wait"
        )
        assert admitted.returncode == 0, admitted.stderr
        return address


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


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll a condition until it gives a true value (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except CliError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def record(number: int) -> RecordBody:
    return RecordBody("invoice", number.to_bytes(32, "big"), amount=number)


class Network:
    """Validators and follower (full) nodes, each with its own key, in a temporary folder.

    Every node lists every other in `[p2p] peers` and every node key in `allowed_peers`,
    so a full node voted in as a validator already has its peers.
    """

    def __init__(self, folder: Path, validators: int = 4, full_nodes: int = 1) -> None:
        self.folder = folder
        self.chain_id = "e2e-net"
        self.password_file = folder / "password"
        self.password_file.write_text(PASSWORD + "\n")
        base_port = find_free_ports(validators + full_nodes)
        self.made = init_network(
            folder / "net", validators, self.chain_id, base_port, PASSWORD, full_nodes=full_nodes
        )
        self.homes = [Path(n["home"]) for n in self.made["nodes"]]
        self.clients = [NodeClient(n["api_url"], timeout_s=5) for n in self.made["nodes"]]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.registrar = unlock_key(
            read_keystore(Path(self.made["keystore"]) / "registrar.json"), PASSWORD
        )
        self.nonces: dict[bytes, int] = {}

    def start(self, index: int) -> None:
        log = self.homes[index] / "node.log"
        process = start_node_process(self.homes[index], self.password_file, log)
        self.processes[index] = process
        wait_until_serving(process, self.made["nodes"][index]["api_url"], log)

    def kill(self, index: int) -> None:
        process = self.processes.pop(index)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self, index: int) -> int:
        """Stop one node with SIGTERM and return its exit code."""
        return stop_node_process(self.processes.pop(index))

    def stop_all(self) -> None:
        for process in self.processes.values():
            stop_node_process(process)

    def assert_running(self, index: int) -> None:
        """Fail, with the end of its log, if a node's process has exited."""
        code = self.processes[index].poll()
        if code is not None:
            log = (self.homes[index] / "node.log").read_text(errors="replace")
            tail = "\n".join(log.strip().splitlines()[-8:])
            raise AssertionError(f"node{index} exited with code {code}; its log ends:\n{tail}")

    def height(self, index: int) -> int:
        return int(self.clients[index].get("/status")["height"])

    def submit(self, index: int, key: ed25519.SigningKey, body: Any) -> str:
        nonce = self.nonces.get(key.public_key, 0) + 1
        self.nonces[key.public_key] = nonce
        tx = sign_transaction(key, self.chain_id, nonce, body)
        return str(self.clients[index].post_tx(encode_transaction(tx))["tx_id"])

    def admit_auditor(self, index: int = 0) -> list[str]:
        """Make an auditor's key in the network's keystore, have the registrar admit it
        through node `index`, wait for it; return the options that sign reads with it."""
        from danangchain.address import compute_address
        from danangchain.transaction import MemberAdmitBody
        from node.keyfile import generate_signing_key, save_key

        key = generate_signing_key()
        keystore = Path(self.made["keystore"])
        save_key(keystore / "auditor.json", "auditor", key, PASSWORD, kdf_n=2**10)
        body = MemberAdmitBody(compute_address(key.public_key), "auditor")
        tx_id = self.submit(index, self.registrar, body)
        wait_for(lambda: self.committed(index, tx_id), 30, "the auditor's admission")
        return [
            "--from", "auditor", "--keystore", str(keystore), "--password-file",
            str(self.password_file),
        ]  # fmt: skip

    def committed(self, index: int, tx_id: str) -> bool:
        try:
            return self.clients[index].get(f"/txs/{tx_id}")["status"] == "committed"
        except CliError:
            return False

    def assert_agreement(self, nodes: list[int], up_to: int) -> None:
        for height in range(1, up_to + 1):
            hashes = {self.clients[i].get(f"/blocks/{height}")["hash"] for i in nodes}
            assert len(hashes) == 1, f"nodes {nodes} disagree at height {height}: {hashes}"


def propose(net: Network, voter: int, action: str, public_key: str, *options: str) -> Any:
    """Vote through the CLI, signed with a validator's own node key, sent to its node."""
    result = run_cli(
        "validator",
        "propose",
        action,
        public_key,
        "--name",
        "newcomer",
        "--from",
        str(net.homes[voter] / "node_key.json"),
        "--password-file",
        str(net.password_file),
        "--node",
        net.made["nodes"][voter]["api_url"],
        "--json",
        *options,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def signing_keys(net: Network, node: int, height: int) -> set[str]:
    """Return the public keys of the set that signs a height, as a node sees it."""
    answer = net.clients[node].get(f"/validators?height={height}")
    return {v["public_key"] for v in answer["validators"]}


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    """Delete any nftables table a partition test of this process left behind."""
    from tests.e2e.netfault import delete_leftover_tables

    delete_leftover_tables()


@pytest.fixture
def two_validators(tmp_path: Path) -> Iterator[Network]:
    """Two validators of one network, both running (quorum: both)."""
    net = Network(tmp_path, validators=2, full_nodes=0)
    try:
        net.start(0)
        net.start(1)
        yield net
    finally:
        net.stop_all()
