"""Node TLS identities made on each node's own machine and trusted through the node registry:
encrypted keys, pins, certificate checks, and real mutual-TLS handshakes over 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import ssl
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import ClientSession, TCPConnector, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from danangchain import ed25519
from node.chain.signatures import SignatureChecks
from node.p2p.transport import PeerIdentity, PeerServer
from node.tls import (
    VALIDITY,
    RegistryTrust,
    check_certificate_pem,
    compute_tls_pin,
    create_tls_identity,
)

GREETING = b"hello from A\n"
DER = serialization.Encoding.DER
DEADLINE_S = 10


@dataclass(frozen=True)
class Identity:
    """A node's identity folder, certificate and key password."""

    folder: Path
    pem: bytes
    password: str

    def trust(self, *peers: Identity) -> RegistryTrust:
        """Return this node's TLS contexts trusting exactly the given identities."""
        folder = self.folder
        trusted = [peer.pem for peer in peers]
        return RegistryTrust(folder / "node.pem", folder / "node.key", self.password, trusted)


@pytest.fixture
def make_identity(tmp_path: Path) -> Callable[[str], Identity]:
    """Return a function that makes a fresh identity for a node name."""

    def make(name: str) -> Identity:
        password = f"secret of {name}"
        folder = tmp_path / name
        return Identity(folder, create_tls_identity(folder, name, ["10.0.0.7"], password), password)

    return make


@dataclass
class GreetingServer:
    """A TLS server that greets each peer that completes a handshake and records its certificate."""

    port: int = 0
    peers: list[bytes] = field(default_factory=list)

    async def greet(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Record the peer's certificate, greet it and hang up."""
        self.peers.append(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        writer.write(GREETING)
        await writer.drain()
        writer.close()


Serve = Callable[[ssl.SSLContext], Awaitable[GreetingServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Return a function that starts a greeting server on a free port; close all at teardown."""
    servers: list[asyncio.Server] = []

    async def start(context: ssl.SSLContext) -> GreetingServer:
        greeting = GreetingServer()
        server = await asyncio.start_server(greeting.greet, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        greeting.port = server.sockets[0].getsockname()[1]
        return greeting

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_greeting(port: int, context: ssl.SSLContext) -> bytes:
    """Connect and return the server's greeting; b"" when the server hangs up instead."""
    async with asyncio.timeout(DEADLINE_S):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        try:
            return await reader.readline()
        except (ssl.SSLError, ConnectionResetError):
            return b""
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()


async def is_refused(port: int, context: ssl.SSLContext) -> bool:
    """Tell whether the server refuses this client's certificate.

    In TLS 1.2 the client sees its handshake fail; in TLS 1.3 the client's side of the handshake
    completes before the server checks its certificate, so it sees the server hang up unheard.
    """
    try:
        return await read_greeting(port, context) == b""
    except (ssl.SSLError, ConnectionResetError):
        return True


def mint_under(issuer: Identity, folder: Path) -> tuple[Path, Path]:
    """Make a client certificate signed by a trusted identity's key; return its chain and key."""
    issuer_key = serialization.load_pem_private_key(
        (issuer.folder / "node.key").read_bytes(), issuer.password.encode()
    )
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")]))
        .issuer_name(x509.load_pem_x509_certificate(issuer.pem).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    chain, key_path = folder / "impostor.pem", folder / "impostor.key"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM) + issuer.pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, key_path


# The identity on disk.


def test_identity_key_is_encrypted_and_readable_by_owner_only(
    make_identity: Callable[[str], Identity],
) -> None:
    a = make_identity("node-a")
    key_path = a.folder / "node.key"
    key_pem = key_path.read_bytes()
    assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with pytest.raises(TypeError, match="encrypted"):
        serialization.load_pem_private_key(key_pem, None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(key_pem, b"not the password")
    key = serialization.load_pem_private_key(key_pem, a.password.encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert (a.folder / "node.pem").read_bytes() == a.pem


def test_identity_certificate_anchors_itself_and_names_its_hosts(
    make_identity: Callable[[str], Identity],
) -> None:
    certificate = x509.load_pem_x509_certificate(make_identity("node-a").pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert certificate.subject.rfc4514_string() == "CN=node-a"
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "node-a"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert usage.digital_signature and usage.key_cert_sign
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime == VALIDITY + datetime.timedelta(minutes=5)


def test_identity_refuses_to_overwrite(make_identity: Callable[[str], Identity]) -> None:
    a = make_identity("node-a")
    with pytest.raises(FileExistsError, match="already exists"):
        create_tls_identity(a.folder, "node-a", [], "another password")
    assert (a.folder / "node.pem").read_bytes() == a.pem


def test_identity_refuses_an_empty_password(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="password is empty"):
        create_tls_identity(tmp_path, "node-a", [], "")
    assert not (tmp_path / "node.key").exists()


def test_registry_trust_refuses_a_wrong_key_password(
    make_identity: Callable[[str], Identity],
) -> None:
    a = make_identity("node-a")
    with pytest.raises(ValueError, match="wrong password"):
        RegistryTrust(a.folder / "node.pem", a.folder / "node.key", "guess", [a.pem])


# Pins and certificate checks.


def test_pin_is_the_sha256_of_the_public_key_and_stable(
    make_identity: Callable[[str], Identity],
) -> None:
    a, b = make_identity("node-a"), make_identity("node-b")
    public_key_info = (
        x509.load_pem_x509_certificate(a.pem)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    pin = compute_tls_pin(a.pem)
    assert len(pin) == 32
    assert pin == hashlib.sha256(public_key_info).digest()
    assert compute_tls_pin(check_certificate_pem(b"\n" + a.pem + b"\n")) == pin
    assert compute_tls_pin(b.pem) != pin


def test_invalid_pin_of_garbage() -> None:
    with pytest.raises(ValueError, match="expected one PEM certificate"):
        compute_tls_pin(b"not a certificate")


def test_check_certificate_pem_returns_it_normalised(
    make_identity: Callable[[str], Identity],
) -> None:
    a = make_identity("node-a")
    assert check_certificate_pem(b"  \n" + a.pem.replace(b"\n", b"\r\n") + b"\n\n") == a.pem


def test_invalid_certificate_garbage() -> None:
    with pytest.raises(ValueError, match="found 0 PEM blocks"):
        check_certificate_pem(b"\x00\x01garbage")


def test_invalid_certificate_body_does_not_parse() -> None:
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(ValueError, match="does not parse"):
        check_certificate_pem(broken)


def test_invalid_certificate_two_certificates(make_identity: Callable[[str], Identity]) -> None:
    with pytest.raises(ValueError, match="found 2 PEM blocks"):
        check_certificate_pem(make_identity("node-a").pem + make_identity("node-b").pem)


def test_invalid_certificate_with_its_private_key(
    make_identity: Callable[[str], Identity],
) -> None:
    a = make_identity("node-a")
    with pytest.raises(ValueError, match="found 2 PEM blocks"):
        check_certificate_pem(a.pem + (a.folder / "node.key").read_bytes())


def test_invalid_certificate_oversize(make_identity: Callable[[str], Identity]) -> None:
    pem = make_identity("node-a").pem
    with pytest.raises(ValueError, match="more than the 4096 allowed"):
        check_certificate_pem(pem + b"\n" * 4096)
    with pytest.raises(ValueError, match="more than the 100 allowed"):
        check_certificate_pem(pem, max_size=100)


def test_invalid_certificate_expired(make_identity: Callable[[str], Identity]) -> None:
    later = datetime.datetime.now(datetime.UTC) + VALIDITY + datetime.timedelta(days=1)
    with pytest.raises(ValueError, match="expired at"):
        check_certificate_pem(make_identity("node-a").pem, now=later)


def test_invalid_certificate_key_not_p256(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p384")])
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
    with pytest.raises(ValueError, match="EC P-256 or Ed25519 only"):
        check_certificate_pem(certificate.public_bytes(serialization.Encoding.PEM))


def test_invalid_certificate_not_self_signed(
    make_identity: Callable[[str], Identity], tmp_path: Path
) -> None:
    chain, _ = mint_under(make_identity("node-a"), tmp_path)
    minted = chain.read_bytes().split(b"-----END CERTIFICATE-----\n")[0]
    with pytest.raises(ValueError, match="not self-signed"):
        check_certificate_pem(minted + b"-----END CERTIFICATE-----\n")


# Handshakes between nodes.


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_server_admits_registered_peers_and_refuses_others_until_trusted(
    make_identity: Callable[[str], Identity], serve: Serve, version: ssl.TLSVersion
) -> None:
    a, b, c = make_identity("node-a"), make_identity("node-b"), make_identity("node-c")
    trust_a, trust_b, trust_c = a.trust(a, b), b.trust(a, b), c.trust(a, c)
    for context in (trust_b.client, trust_c.client):
        context.maximum_version = version
    server = await serve(trust_a.server)

    assert await read_greeting(server.port, trust_b.client) == GREETING
    assert await is_refused(server.port, trust_c.client)
    assert server.peers == [x509.load_pem_x509_certificate(b.pem).public_bytes(DER)]

    assert trust_a.trust([c.pem, b.pem]) == 1
    assert await read_greeting(server.port, trust_c.client) == GREETING
    assert [trust_a.is_registered_peer(peer) for peer in server.peers] == [True, True]
    assert trust_a.trusted_pins() == {compute_tls_pin(p.pem) for p in (a, b, c)}


async def test_trust_counts_only_certificates_not_yet_trusted(
    make_identity: Callable[[str], Identity],
) -> None:
    a, b = make_identity("node-a"), make_identity("node-b")
    trust_a = a.trust(a)
    assert trust_a.trust([a.pem]) == 0
    assert trust_a.trust([b.pem, b.pem, check_certificate_pem(b"\n" + b.pem)]) == 1
    assert trust_a.trust([]) == 0
    with pytest.raises(ValueError, match="PEM"):
        trust_a.trust([b"garbage"])


async def test_client_refuses_a_server_it_does_not_trust(
    make_identity: Callable[[str], Identity], serve: Serve
) -> None:
    a, b = make_identity("node-a"), make_identity("node-b")
    server = await serve(a.trust(a, b).server)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await read_greeting(server.port, b.trust(b).client)
    assert server.peers == []


async def test_certificate_minted_under_a_trusted_one_is_not_a_registered_peer(
    make_identity: Callable[[str], Identity], serve: Serve, tmp_path: Path
) -> None:
    # A trusted identity is a CA (so OpenSSL accepts it as its own anchor), so OpenSSL also
    # accepts what it signs: the node must match the peer's certificate with the registry.
    a, b = make_identity("node-a"), make_identity("node-b")
    trust_a = a.trust(a, b)
    server = await serve(trust_a.server)
    impostor = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    impostor.check_hostname = False
    impostor.load_cert_chain(*mint_under(b, tmp_path))
    impostor.load_verify_locations(cadata=a.pem.decode())

    assert await read_greeting(server.port, impostor) == GREETING
    assert not trust_a.is_registered_peer(server.peers[0])
    assert not trust_a.is_registered_peer(None)


async def test_a_peer_whose_certificate_the_registry_no_longer_lists_is_refused_and_counted(
    make_identity: Callable[[str], Identity],
) -> None:
    """OpenSSL cannot forget a trusted certificate, so a node removed from the registry
    still completes the handshake until its peers restart: the peer server then refuses
    its requests by the registry's current certificates, and counts them."""
    a, b, c = make_identity("a"), make_identity("b"), make_identity("c")
    server_trust = a.trust(a, b, c)  # c was registered once, then removed
    registered = {ssl.PEM_cert_to_DER_cert(i.pem.decode()) for i in (a, b)}
    counters: dict[str, int] = {}
    server = PeerServer(
        "tls-test",
        lambda key: True,
        SignatureChecks(),
        counters,
        lambda batch: None,
        lambda batch: None,
        lambda: 7,
        lambda height: None,
        lambda certificate: certificate in registered,
    )
    runner = web.AppRunner(server.create_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_trust.server)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    statuses = {}
    try:
        for name, identity in (("b", b), ("c", c)):
            client = identity.trust(a).client
            signer = PeerIdentity(ed25519.signing_key_from_seed(name.encode() * 32), "tls-test")
            headers = signer.headers("GET", "/p2p/status", b"")
            async with (
                ClientSession(connector=TCPConnector(ssl=client)) as session,
                session.get(f"https://127.0.0.1:{port}/p2p/status", headers=headers) as answer,
            ):
                statuses[name] = answer.status
    finally:
        await runner.cleanup()
    assert statuses == {"b": 200, "c": 403}
    assert counters == {"refused peer: unregistered certificate": 1}
