"""End to end: independent organisations form a network with no shared folder.

Each department makes its own node home with `danangchain node init` (its keys, its own
TLS identity, its config and its signed card) in a folder of its own; a registrar makes
its key with `keys new` in a keystore of its own. Only the cards, the registrar's public
key and the genesis file travel between organisations, through a separate `shared`
folder: the genesis creator reads the cards only from there, and every organisation reads
the genesis only from there. No test code reads another organisation's home.

Every department runs `genesis create` itself on the same cards (in another order) and
gets the same hash, then `node join --genesis-hash` with it. Each node binds its own
loopback address, 127.0.0.(11+i), for both its peer and its API port. Peers talk mutual
TLS trusted from the chain's node registry (https), or plain signed HTTP (http). A fifth
department joins as a full node, is refused by the validators until their votes (3 of 4)
put its card in the registry, and then signs blocks with no config edit and no restart;
with one of the original four stopped, the network keeps committing, which needs the
newcomer's signature (4 of 5).
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli.client import CliError, NodeClient
from cli.localnet import start_node_process, stop_node_process, wait_until_serving
from danangchain import ed25519
from danangchain.transaction import RecordBody, encode_transaction, sign_transaction
from node.keyfile import read_keystore, unlock_key
from tests.e2e.conftest import PASSWORD, run_cli, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CHAIN_ID = "danang-consortium"
DEPARTMENTS = ["Dept. of Finance", "Dept. of Health", "Dept. of Justice", "Dept. of Transport"]
NEWCOMER_NAME = "Dept. of Education"
NEWCOMER = len(DEPARTMENTS)
STOPPED = 3


def free_port(host: str, taken: set[int]) -> int:
    """Return a port free on this loopback address now, below the ephemeral range."""
    for _ in range(500):
        port = random.randrange(20_000, 32_000)
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise AssertionError(f"no free port on {host}")


def cli_ok(*args: str) -> Any:
    """Run a CLI command with --json that must succeed, and parse its output."""
    result = run_cli(*args, "--json")
    assert result.returncode == 0, f"{' '.join(args[:2])} failed: {result.stderr}"
    return json.loads(result.stdout)


@dataclass
class Organisation:
    """One department: its own folder, the node home in it, and its running node."""

    index: int
    name: str
    folder: Path
    password_file: Path
    p2p_url: str
    api_url: str
    public_key: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def log(self) -> Path:
        return self.folder / "node.log"

    @property
    def client(self) -> NodeClient:
        return NodeClient(self.api_url, timeout_s=5)

    def init(self) -> dict[str, Any]:
        """Make the node home with `node init`, as the department does on its machine."""
        made = cli_ok(
            "node",
            "init",
            str(self.home),
            "--name",
            self.name,
            "--p2p-url",
            self.p2p_url,
            "--api-url",
            self.api_url,
            "--password-file",
            str(self.password_file),
        )
        self.public_key = made["public_key"]
        return made

    def start(self) -> None:
        self.process = start_node_process(self.home, self.password_file, self.log)

    def wait_serving(self) -> None:
        assert self.process is not None
        wait_until_serving(self.process, self.api_url, self.log)

    def stop(self) -> int:
        assert self.process is not None
        code = stop_node_process(self.process)
        self.process = None
        return code

    def assert_running(self) -> None:
        """Fail, with the end of this department's own log, if its node exited."""
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            tail = "\n".join(self.log.read_text(errors="replace").strip().splitlines()[-8:])
            raise AssertionError(f"{self.name}'s node exited with code {code}:\n{tail}")

    def height(self) -> int:
        return int(self.client.get("/status")["height"])

    def committed(self, tx_id: str) -> bool:
        try:
            return self.client.get(f"/txs/{tx_id}")["status"] == "committed"
        except CliError:
            return False


@dataclass
class Consortium:
    """The organisations and the shared folder they exchange cards and the genesis in."""

    folder: Path
    scheme: str
    orgs: list[Organisation] = field(default_factory=list)

    @property
    def shared(self) -> Path:
        return self.folder / "shared"

    def card(self, org: Organisation) -> Path:
        """Where an organisation's card lands once it shared it."""
        return self.shared / f"card-{org.index}.json"

    def share_card(self, org: Organisation) -> None:
        shutil.copy(org.home / "node-card.json", self.card(org))

    def stop_all(self) -> None:
        for org in self.orgs:
            if org.process is not None:
                org.stop()


def make_organisation(folder: Path, index: int, name: str, scheme: str) -> Organisation:
    """Give department `index` its own folder, password and loopback address."""
    org_folder = folder / f"org{index}"
    org_folder.mkdir()
    password_file = org_folder / "password"
    password_file.write_text(PASSWORD + "\n")
    host = f"127.0.0.{11 + index}"
    taken: set[int] = set()
    p2p = f"{scheme}://{host}:{free_port(host, taken)}"
    api = f"http://{host}:{free_port(host, taken)}"
    return Organisation(index, name, org_folder, password_file, p2p, api)


@pytest.fixture(params=["https", "http"])
def consortium(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Consortium]:
    net = Consortium(tmp_path, request.param)
    net.shared.mkdir()
    names = [*DEPARTMENTS, NEWCOMER_NAME]
    net.orgs = [make_organisation(tmp_path, i, n, request.param) for i, n in enumerate(names)]
    try:
        yield net
    finally:
        net.stop_all()


@dataclass
class Registrar:
    """The registrar's keystore folder, of its own."""

    keystore: Path
    password_file: Path

    def submission(self, node_url: str) -> list[str]:
        return [
            "--from",
            "registrar",
            "--keystore",
            str(self.keystore),
            "--password-file",
            str(self.password_file),
            "--node",
            node_url,
            "--wait",
        ]


def make_registrar(folder: Path) -> tuple[Registrar, str]:
    """Create the registrar's key in its own keystore; return it and its public key."""
    (folder / "registrar").mkdir()
    password_file = folder / "registrar" / "password"
    password_file.write_text(PASSWORD + "\n")
    keystore = folder / "registrar" / "keys"
    args = ["--keystore", str(keystore)]
    cli_ok("keys", "new", "registrar", *args, "--password-file", str(password_file))
    public_key = cli_ok("keys", "show", "registrar", *args)["public_key"]
    return Registrar(keystore, password_file), public_key


def create_genesis(net: Consortium, cards: list[Path], registrar_key: str, out: Path) -> Any:
    """Run `genesis create` on cards in the shared folder."""
    validators = [arg for card in cards for arg in ("--validator", str(card))]
    return run_cli(
        "genesis",
        "create",
        "--chain-id",
        CHAIN_ID,
        *validators,
        "--registrar",
        registrar_key,
        "--time-ms",
        "1767225600000",
        "--out",
        str(out),
        "--json",
    )


def assert_refused_with_one_line(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert words in result.stderr, result.stderr


def form_network(net: Consortium, registrar_key: str) -> str:
    """Make the genesis from the shared cards, check it everywhere, join every home."""
    founders = net.orgs[:NEWCOMER]
    cards = [net.card(org) for org in founders]

    # A card whose peer URL was changed after signing is refused, and nothing is written.
    tampered = json.loads(cards[1].read_text())
    tampered["p2p_urls"] = [tampered["p2p_urls"][0].rsplit(":", 1)[0] + ":1"]
    tampered_card = net.folder / "tampered-card.json"
    tampered_card.write_text(json.dumps(tampered))
    refused_out = net.folder / "refused-genesis.json"
    result = create_genesis(net, [cards[0], tampered_card, *cards[2:]], registrar_key, refused_out)
    assert_refused_with_one_line(result, "signature does not match")
    assert not refused_out.exists()

    genesis_file = net.shared / "genesis.json"
    made = json.loads(create_genesis(net, cards, registrar_key, genesis_file).stdout)
    genesis_hash = str(made["genesis_hash"])
    assert (made["validators"], made["nodes"]) == (4, 4)

    # Each department makes the genesis itself from the shared cards, in another order.
    for org in founders:
        rotated = cards[org.index :] + cards[: org.index]
        own = create_genesis(net, rotated[::-1], registrar_key, org.folder / "genesis-check.json")
        assert own.returncode == 0, own.stderr
        assert json.loads(own.stdout)["genesis_hash"] == genesis_hash

    # A genesis hash other than the announced one is refused, and nothing is installed.
    wrong = "00" * 32
    result = run_cli(
        "node",
        "join",
        str(founders[0].home),
        "--genesis",
        str(genesis_file),
        "--genesis-hash",
        wrong,
    )
    assert_refused_with_one_line(result, f"not the announced {wrong}")
    assert not (founders[0].home / "genesis.json").exists()

    for org in net.orgs:
        joined = cli_ok(
            "node",
            "join",
            str(org.home),
            "--genesis",
            str(genesis_file),
            "--genesis-hash",
            genesis_hash,
        )
        assert joined["genesis_hash"] == genesis_hash
    return genesis_hash


@dataclass
class Household:
    """A member whose records make the blocks; its key unlocked from its own keystore."""

    key: ed25519.SigningKey
    address: str
    next_nonce: int

    def submit_record(self, org: Organisation, number: int) -> str:
        body = RecordBody("invoice", number.to_bytes(32, "big"), amount=number)
        tx = sign_transaction(self.key, CHAIN_ID, self.next_nonce, body)
        self.next_nonce += 1
        return str(org.client.post_tx(encode_transaction(tx))["tx_id"])


def admit_household(net: Consortium, registrar: Registrar) -> Household:
    """The registrar admits a household, which records an invoice through the CLI."""
    (net.folder / "household").mkdir()
    keystore = net.folder / "household" / "keys"
    password_file = net.folder / "household" / "password"
    password_file.write_text(PASSWORD + "\n")
    made = cli_ok(
        "keys",
        "new",
        "household",
        "--keystore",
        str(keystore),
        "--password-file",
        str(password_file),
    )
    admitted = cli_ok(
        "member",
        "admit",
        made["address"],
        "--role",
        "household",
        *registrar.submission(net.orgs[1].api_url),
    )
    assert admitted["status"] == "committed", admitted
    recorded = cli_ok(
        "tx",
        "record",
        "--category",
        "invoice",
        "--doc-hash",
        "ab" * 32,
        "--amount",
        "1500000",
        "--from",
        "household",
        "--keystore",
        str(keystore),
        "--password-file",
        str(password_file),
        "--node",
        net.orgs[2].api_url,
        "--wait",
    )
    assert recorded["status"] == "committed", recorded
    for org in net.orgs[:NEWCOMER]:
        wait_for(lambda org=org: org.committed(recorded["tx_id"]), 20, f"{org.name} to commit")
    key = unlock_key(read_keystore(keystore / "household.json"), PASSWORD)
    account = net.orgs[0].client.get(f"/keys/{key.public_key.hex()}")
    return Household(key, made["address"], int(account["next_nonce"]))


def certificate_signers(org: Organisation, height: int) -> set[str]:
    """Return who signed a height, as one node keeps it: the block's own certificate and
    the next block's last_commit, when that exists."""
    signers: set[str] = set()
    for wanted, field_name in ((height, "certificate"), (height + 1, "last_commit")):
        try:
            certificate = org.client.get(f"/blocks/{wanted}")[field_name]
        except CliError:
            break  # this node has not committed that block yet
        if certificate is not None:
            signers |= {s["validator"] for s in certificate["signatures"]}
    return signers


def commit_record(net: Consortium, household: Household, via: Organisation, on: list[int]) -> str:
    """Submit a record through one node and wait until the given nodes committed it."""
    tx_id = household.submit_record(via, household.next_nonce)
    for index in on:
        org = net.orgs[index]

        def committed(org: Organisation = org) -> bool:
            org.assert_running()
            return org.committed(tx_id)

        wait_for(committed, 20, f"record {tx_id[:16]} to commit on {org.name}")
    return tx_id


def vote_in(net: Consortium, voter: Organisation, card: Path) -> Any:
    """A validator votes the newcomer in from its card, signing with its own node key."""
    return cli_ok(
        "validator",
        "propose",
        "add",
        "--card",
        str(card),
        "--from",
        str(voter.home / "node_key.json"),
        "--password-file",
        str(voter.password_file),
        "--node",
        voter.api_url,
        "--wait",
    )


def registry_keys(org: Organisation) -> list[str]:
    return sorted(n["public_key"] for n in org.client.get("/nodes")["nodes"])


def readiness(org: Organisation) -> dict[str, Any]:
    """Return a node's /readiness document: how many of the peers it dials answer it."""
    return org.client.probe("/readiness")[1]


def test_departments_form_a_network_from_cards_vote_a_fifth_in_and_survive_a_stop(
    consortium: Consortium,
) -> None:
    net = consortium
    founders, newcomer = net.orgs[:NEWCOMER], net.orgs[NEWCOMER]
    started = time.monotonic()

    # 1. Every department makes its home; only the cards and the registrar key travel.
    for org in net.orgs:
        made = org.init()
        assert made["tls"] is (net.scheme == "https")
        net.share_card(org)
    registrar, registrar_key = make_registrar(net.folder)
    genesis_hash = form_network(net, registrar_key)

    # 2. The four validators start, serve and commit.
    for org in founders:
        org.start()
    for org in founders:
        org.wait_serving()
        assert org.client.get("/status")["chain_id"] == CHAIN_ID
    household = admit_household(net, registrar)
    founder_keys = sorted(org.public_key for org in founders)
    assert registry_keys(founders[0]) == founder_keys

    # 3. A fifth department starts as a full node: it is in no registry, so refused.
    newcomer.start()
    newcomer.wait_serving()
    assert newcomer.client.get("/status")["node_public_key"] == newcomer.public_key
    commit_record(net, household, founders[0], [0, 1, 2, 3])
    for org in founders:
        assert registry_keys(org) == founder_keys
        assert readiness(org)["peers_configured"] == 3
    refused = readiness(newcomer)
    assert (refused["peers_configured"], refused["peers_answering"]) == (4, 0), refused
    if net.scheme == "http":  # with https the TLS handshake refuses it, before any count
        for org in founders:
            counters = org.client.get("/status")["counters"]
            assert counters.get("refused peer: unknown peer", 0) > 0, counters
    assert newcomer.height() == 0, "a node outside the registry followed the chain"

    # Three of four votes (more than 2/3) put its card in the registry and the set.
    newcomer_card = net.card(newcomer)
    for voter in founders[:2]:
        pending = vote_in(net, voter, newcomer_card)
        assert pending["status"] == "committed", pending
    answer = founders[0].client.get("/validators")
    assert newcomer.public_key not in {v["public_key"] for v in answer["validators"]}
    votes = [v for v in answer["pending_votes"] if v["public_key"] == newcomer.public_key]
    assert [(v["power_voted"], v["power_needed"]) for v in votes] == [(2, 3)], votes
    decided = vote_in(net, founders[2], newcomer_card)
    decided_at = time.monotonic()
    vote_height = int(decided["height"])
    vote_block_ms = founders[0].client.get(f"/blocks/{vote_height}")["header"]["time_ms"]
    signing = founders[0].client.get(f"/validators?height={vote_height + 2}")["validators"]
    assert newcomer.public_key in {v["public_key"] for v in signing}
    wait_for(
        lambda: registry_keys(founders[0]) == sorted([*founder_keys, newcomer.public_key]),
        10,
        "the registry to list the newcomer",
    )

    # Records make blocks until the newcomer's key is among a certificate's signers.
    first_signed: int | None = None
    checked = vote_height
    deadline = time.monotonic() + 30
    while first_signed is None:
        assert time.monotonic() < deadline, f"{newcomer.name} signed nothing up to {checked}"
        commit_record(net, household, founders[0], [0])
        tip = founders[0].height()
        for height in range(vote_height + 1, tip + 1):
            signers = set().union(*(certificate_signers(org, height) for org in founders))
            if newcomer.public_key in signers:
                first_signed = height
                break
        checked = tip
    seen_after_s = time.monotonic() - decided_at
    first_block_ms = founders[0].client.get(f"/blocks/{first_signed}")["header"]["time_ms"]
    print(
        f"\n[{net.scheme}] vote committed at height {vote_height}; the newcomer's key first "
        f"signs height {first_signed} ({first_signed - vote_height} heights later), "
        f"{(first_block_ms - vote_block_ms) / 1000:.3f} s of block time after the vote's "
        f"block, seen {seen_after_s:.3f} s after the vote's commit was reported"
    )
    assert first_signed >= vote_height + 2
    wait_for(lambda: newcomer.height() >= first_signed, 20, "the newcomer to sync")
    wait_for(lambda: readiness(newcomer)["peers_answering"] == 4, 10, "the newcomer's peers")
    for org in founders:
        assert readiness(org)["peers_configured"] == 4, f"{org.name} does not dial the newcomer"

    # 4. One of the original four stops: the other three and the newcomer commit on.
    assert founders[STOPPED].stop() == 0
    running = [i for i in range(len(net.orgs)) if i != STOPPED]
    tx_id = commit_record(net, household, founders[1], running)
    height = int(founders[1].client.get(f"/txs/{tx_id}")["height"])
    assert newcomer.public_key in certificate_signers(founders[1], height)
    for index in running:
        answer = net.orgs[index].client.get("/nodes")
        assert answer["count"] == 5, answer
        assert net.orgs[index].client.get("/status")["genesis_hash"] == genesis_hash
    hashes = {net.orgs[i].client.get(f"/blocks/{height}")["hash"] for i in running}
    assert len(hashes) == 1, f"the running nodes disagree at height {height}: {hashes}"
    print(f"[{net.scheme}] the consortium story took {time.monotonic() - started:.1f} s")
