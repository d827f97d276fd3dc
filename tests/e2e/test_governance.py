"""End to end: the validator set changes by vote under load; mutual TLS keeps strangers out."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.transaction import MemberAdmitBody
from tests.e2e.conftest import (
    PASSWORD,
    Network,
    propose,
    record,
    run_cli,
    signing_keys,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def test_validator_added_then_removed_while_transactions_flow(tmp_path: Path) -> None:
    net = Network(tmp_path)
    try:
        for index in range(5):  # four validators and node4, a full node that syncs first
            net.start(index)
        sender = ed25519.signing_key_from_seed(b"\x42" * 32)
        admit = net.submit(
            0, net.registrar, MemberAdmitBody(compute_address(sender.public_key), "business")
        )
        wait_for(lambda: net.committed(4, admit), 30, "the full node to follow")

        stop = threading.Event()
        sent: list[str] = []

        def stream() -> None:
            number = 0
            while not stop.is_set():
                sent.append(net.submit(0, sender, record(10_000 + number)))
                number += 1
                time.sleep(0.05)

        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            newcomer = net.made["nodes"][4]["public_key"]
            for voter in (0, 1, 2):
                assert propose(net, voter, "add", newcomer)["status"] == "pending"
            tip = wait_for(
                lambda: newcomer in signing_keys(net, 0, net.height(0) + 1) and net.height(0),
                60,
                "the newcomer to sign",
            )

            # The newcomer really signs: its precommit shows up in certificates (a
            # certificate holds any quorum, so not necessarily the first one).
            def newcomer_signed() -> bool:
                for height in range(tip + 1, net.height(0) + 1):
                    certificate = net.clients[0].get(f"/blocks/{height}")["certificate"]
                    if newcomer in {s["validator"] for s in certificate["signatures"]}:
                        return True
                return False

            wait_for(newcomer_signed, 60, "a certificate signed by the newcomer")

            leaving = net.made["nodes"][3]["public_key"]
            for voter in (0, 1, 2, 4):
                propose(net, voter, "remove", leaving)
            wait_for(
                lambda: leaving not in signing_keys(net, 0, net.height(0) + 1),
                60,
                "the removal to take effect",
            )
            net.kill(3)
            before = net.height(0)
            wait_for(lambda: net.height(0) >= before + 3, 60, "commits without node3")
        finally:
            stop.set()
            streamer.join()
        wait_for(lambda: all(net.committed(0, t) for t in sent), 60, "every streamed record")

        top = min(net.height(i) for i in (0, 1, 2, 4))
        net.assert_agreement([0, 1, 2, 4], top)
        times = [net.clients[0].get(f"/blocks/{h}")["header"]["time_ms"] for h in range(2, top + 1)]
        longest_pause_s = max(b - a for a, b in zip(times, times[1:], strict=False)) / 1000
        assert longest_pause_s < 8, f"commits paused for {longest_pause_s:.1f}s"
        auditor = net.admit_auditor()
        audit = run_cli(
            "audit", "verify", "--node", net.made["nodes"][0]["api_url"], *auditor, "--json",
            timeout=120,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert json.loads(audit.stdout)["valid"] is True
        # A record committed after both changes is provable offline from the genesis: the
        # proof carries the hand-overs to the five and back to four validators.
        url, genesis_hash = (
            net.made["nodes"][0]["api_url"],
            json.loads(audit.stdout)["genesis_hash"],
        )
        proof_file = tmp_path / "last.proof"
        proved = run_cli(
            "audit", "prove", sent[-1], "--node", url, *auditor, "--out", str(proof_file)
        )
        assert proved.returncode == 0, proved.stderr
        assert len(json.loads(proof_file.read_text())["handovers"]) == 2
        checked = run_cli(
            "audit", "check-proof", str(proof_file), "--genesis-hash", genesis_hash, "--json"
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert json.loads(checked.stdout)["valid"] is True
    finally:
        net.stop_all()
        shutil.rmtree(tmp_path / "net", ignore_errors=True)


def test_tls_network_commits_and_refuses_a_self_signed_peer(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    folder = tmp_path / "net"
    made = run_cli(
        "network",
        "init",
        str(folder),
        "--validators",
        "4",
        "--tls",
        "--base-port",
        str(_free_base()),
        "--password-file",
        str(password_file),
        "--json",
    )
    assert made.returncode == 0, made.stderr
    nodes = json.loads(made.stdout)["nodes"]
    testnet = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "testnet",
            str(folder),
            "--password-file",
            str(password_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        urls = [testnet.stdout.readline().strip() for _ in nodes]
        assert urls == [n["api_url"] for n in nodes]
        keystore = folder / "keys"
        key = ed25519.signing_key_from_seed(b"\x43" * 32)
        from node.keyfile import save_key

        save_key(keystore / "shop.json", "shop", key, PASSWORD, kdf_n=2**10)
        address = run_cli("keys", "show", "shop", "--keystore", str(keystore), "--json")
        admitted = run_cli(
            "member",
            "admit",
            json.loads(address.stdout)["address"],
            "--role",
            "business",
            "--from",
            "registrar",
            "--keystore",
            str(keystore),
            "--password-file",
            str(password_file),
            "--node",
            urls[1],
            "--wait",
            "--json",
        )
        assert admitted.returncode == 0, admitted.stderr
        assert json.loads(admitted.stdout)["status"] == "committed"

        p2p = nodes[0]["p2p_url"]
        assert p2p.startswith("https://")
        # Each node made its own TLS identity; the registry lists every node's certificate.
        assert not (folder / "ca").exists()
        node0_card = json.loads(run_cli("query", "nodes", "--node", urls[0], "--json").stdout)
        node0_pem = next(n for n in node0_card["nodes"] if n["p2p_urls"] == [p2p])
        assert node0_pem["tls_certificate_sha256"]
        # The test's own full node: made by node init in its own folder, admitted by the
        # registrar from its card. Only then does the network's TLS accept its certificate.
        partner = tmp_path / "partner"
        initialised = run_cli(
            "node", "init", str(partner), "--name", "partner",
            "--p2p-url", "https://127.0.0.1:1", "--password-file", str(password_file),
        )  # fmt: skip
        assert initialised.returncode == 0, initialised.stderr
        assert b"ENCRYPTED" in (partner / "tls" / "node.key").read_bytes()
        member = ssl.create_default_context()
        member.check_hostname = False
        member.verify_mode = ssl.CERT_NONE
        member.load_cert_chain(
            partner / "tls" / "node.pem", partner / "tls" / "node.key", password=PASSWORD
        )
        with pytest.raises((aiohttp.ClientError, ssl.SSLError, OSError)):
            asyncio.run(_get(p2p + "/p2p/status", member))  # not in the registry yet
        admitted_node = run_cli(
            "node", "admit", "--card", str(partner / "node-card.json"), "--from", "registrar",
            "--keystore", str(keystore), "--password-file", str(password_file),
            "--node", urls[1], "--wait", "--json",
        )  # fmt: skip
        assert admitted_node.returncode == 0, admitted_node.stderr
        intruder = _self_signed_context(tmp_path)
        with pytest.raises((aiohttp.ClientError, ssl.SSLError, OSError)):
            asyncio.run(_get(p2p + "/p2p/status", intruder))
        # A registered node's certificate but an unsigned request: refused by admission,
        # and counted.
        wait_for(lambda: _status_or_none(p2p + "/p2p/status", member) == 401, 15, "a 401")
        status = json.loads(run_cli("query", "status", "--node", urls[0], "--json").stdout)
        assert status["counters"].get("refused peer: unsigned request", 0) >= 1
    finally:
        testnet.terminate()
        testnet.wait(30)


async def _get(url: str, context: ssl.SSLContext) -> int:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response,
    ):
        return response.status


def _status_or_none(url: str, context: ssl.SSLContext) -> int | None:
    """Return a GET's status, or None while the handshake is refused."""
    try:
        return asyncio.run(_get(url, context))
    except (aiohttp.ClientError, ssl.SSLError, OSError):
        return None


def _self_signed_context(folder: Path) -> ssl.SSLContext:
    """A client that shows a certificate it signed itself, which no registry lists."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "intruder.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "intruder.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(folder / "intruder.pem", folder / "intruder.key")
    return context


def _free_base() -> int:
    from cli.localnet import find_free_ports

    return find_free_ports(4)
