"""Mutual TLS between nodes: the network certificate authority of existing homes, and the
identities each node makes itself, trusted through the certificates of the node registry."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.config import NodeConfig

VALIDITY = datetime.timedelta(days=3650)
MAX_CERTIFICATE_SIZE = 4096
IDENTITY_CERTIFICATE = "node.pem"
IDENTITY_KEY = "node.key"
PEM_BEGIN = b"-----BEGIN "
PEM_CERTIFICATE_BEGIN = b"-----BEGIN CERTIFICATE-----"
PEM_CERTIFICATE_END = b"-----END CERTIFICATE-----"


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_authority(
    folder: Path, network: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Create the network's certificate authority in `folder` (ca.pem, ca.key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{network} network authority")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_private(folder / "ca.key", _pem_key(key))
    return certificate, key


def issue_node_certificate(
    authority: x509.Certificate, authority_key: ec.EllipticCurvePrivateKey, config: NodeConfig
) -> None:
    """Give a node a certificate from the authority, for 127.0.0.1, localhost and its host."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(config.name)]
    for host in {"127.0.0.1", config.p2p_host, config.api_host}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, config.name)]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(authority_key, hashes.SHA256())
    )
    config.path(config.tls_ca_file).parent.mkdir(parents=True, exist_ok=True)
    config.path(config.tls_ca_file).write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    config.path(config.tls_cert_file).write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
    )
    _write_private(config.path(config.tls_key_file), _pem_key(key))


def server_context(config: NodeConfig, require_client_certificate: bool) -> ssl.SSLContext:
    """Return the TLS context a node serves with; peers must show a certificate of the CA."""
    context = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=str(config.path(config.tls_ca_file))
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.path(config.tls_cert_file), config.path(config.tls_key_file))
    context.verify_mode = ssl.CERT_REQUIRED if require_client_certificate else ssl.CERT_NONE
    return context


def client_context(config: NodeConfig) -> ssl.SSLContext:
    """Return the TLS context a node calls its peers with: it trusts only the network CA and
    shows its own certificate."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(config.path(config.tls_ca_file))
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.path(config.tls_cert_file), config.path(config.tls_key_file))
    return context


# A node's own TLS identity, trusted through the node registry.


def _general_name(host: str) -> x509.GeneralName:
    """Return a host as an IP address name when it parses as one, else as a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _identity_names(name: str, hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    """Return the names an identity covers: localhost, the node's name, its hosts, 127.0.0.1."""
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(name)]
    names += [_general_name(host) for host in [*hosts, "127.0.0.1"]]
    return x509.SubjectAlternativeName(list(dict.fromkeys(names)))


def _identity_key_usage() -> x509.KeyUsage:
    """Return the key usage of an identity: it signs handshakes and, as its own anchor, itself."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _self_signed_certificate(
    key: ec.EllipticCurvePrivateKey, name: str, hosts: Sequence[str]
) -> x509.Certificate:
    """Return a certificate of `key` signed by itself, fit to anchor its own trust in OpenSSL."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    public_key = key.public_key()
    now = datetime.datetime.now(datetime.UTC)
    both_auths = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(_identity_names(name, hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_identity_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(both_auths), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def create_tls_identity(folder: Path, name: str, hosts: Sequence[str], password: str) -> bytes:
    """Make a node's own TLS identity in `folder` (node.pem, node.key encrypted); return the PEM."""
    certificate_path, key_path = folder / IDENTITY_CERTIFICATE, folder / IDENTITY_KEY
    # Verify nothing is replaced: the old certificate may already sit in a signed node card.
    for path in (certificate_path, key_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; move it away to make a new identity")
    # Verify there is a password: every private key on disk is encrypted.
    if not password:
        raise ValueError("the TLS key password is empty; node.key is always encrypted")
    key = ec.generate_private_key(ec.SECP256R1())
    certificate_pem = _self_signed_certificate(key, name, hosts).public_bytes(
        serialization.Encoding.PEM
    )
    encryption = serialization.BestAvailableEncryption(password.encode())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _write_private(key_path, key_pem)
    with certificate_path.open("xb") as handle:
        handle.write(certificate_pem)
    return certificate_pem


def _load_one_certificate(data: bytes, max_size: int) -> x509.Certificate:
    """Parse bytes that must be exactly one PEM certificate and nothing else."""
    # Verify the size first: a card's field must not make the node parse megabytes.
    if len(data) > max_size:
        raise ValueError(f"certificate is {len(data)} bytes, more than the {max_size} allowed")
    blocks = data.count(PEM_BEGIN)
    if blocks != 1:
        raise ValueError(f"expected one PEM certificate, found {blocks} PEM blocks")
    text = data.strip()
    if not (text.startswith(PEM_CERTIFICATE_BEGIN) and text.endswith(PEM_CERTIFICATE_END)):
        raise ValueError("expected one PEM block '-----BEGIN CERTIFICATE-----' and nothing else")
    try:
        return x509.load_pem_x509_certificate(text)
    except ValueError as error:
        raise ValueError(f"the PEM certificate does not parse: {error}") from error


def _compute_key_pin(certificate: x509.Certificate) -> bytes:
    """Return the SHA-256 of a certificate's public key as DER SubjectPublicKeyInfo."""
    public_key_info = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(public_key_info).digest()


def compute_tls_pin(certificate_pem: bytes) -> bytes:
    """Return the 32-byte pin of one PEM certificate: SHA-256 of its DER SubjectPublicKeyInfo."""
    return _compute_key_pin(_load_one_certificate(certificate_pem, MAX_CERTIFICATE_SIZE))


def check_certificate_pem(
    data: bytes, max_size: int = MAX_CERTIFICATE_SIZE, *, now: datetime.datetime | None = None
) -> bytes:
    """Check one PEM certificate fit to anchor a node's TLS trust; return it re-serialised."""
    certificate = _load_one_certificate(data, max_size)
    key = certificate.public_key()
    is_p256 = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    if not (is_p256 or isinstance(key, ed25519.Ed25519PublicKey)):
        raise ValueError(f"certificate key is {type(key).__name__}; EC P-256 or Ed25519 only")
    # Verify it is signed by its own key: OpenSSL accepts only a self-signed anchor here.
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise ValueError("certificate is not self-signed by its own key") from error
    moment = now or datetime.datetime.now(datetime.UTC)
    if certificate.not_valid_after_utc <= moment:
        raise ValueError(f"certificate expired at {certificate.not_valid_after_utc.isoformat()}")
    return certificate.public_bytes(serialization.Encoding.PEM)


def _mutual_context(
    context: ssl.SSLContext, certificate_path: Path, key_path: Path, password: str
) -> ssl.SSLContext:
    """Set a context to TLS 1.2+, showing the node's certificate and demanding the peer's."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The peer's identity is its certificate in the registry, not a DNS name.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(certificate_path, key_path, password=password.encode())
    except ssl.SSLError as error:
        raise ValueError(
            f"cannot load {key_path}: wrong password, or not the key of {certificate_path}"
        ) from error
    return context


class RegistryTrust:
    """The server and client TLS contexts of a node that trusts the node registry's certificates.

    Both contexts show the node's own certificate and verify the peer's against exactly the
    trusted set. OpenSSL cannot remove a trust anchor from a live context: a node removed from
    the registry is refused at the request level (signed peer requests are checked against the
    registry), and a restart drops its certificate from the TLS trust as well.
    """

    def __init__(
        self, certificate_path: Path, key_path: Path, password: str, trusted: Iterable[bytes]
    ) -> None:
        identity = (certificate_path, key_path, password)
        self.server = _mutual_context(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), *identity)
        self.client = _mutual_context(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), *identity)
        self._pins: dict[bytes, bytes] = {}  # certificate DER -> its key pin
        self.trust(trusted)

    def trust(self, pems: Iterable[bytes]) -> int:
        """Trust certificates not yet trusted, in new handshakes of both contexts; count them."""
        fresh: dict[bytes, bytes] = {}
        for pem in pems:
            certificate = _load_one_certificate(pem, MAX_CERTIFICATE_SIZE)
            der = certificate.public_bytes(serialization.Encoding.DER)
            if der not in self._pins:
                fresh[der] = _compute_key_pin(certificate)
        if fresh:
            # A context's store is shared by the connections it makes from now on.
            for context in (self.server, self.client):
                context.load_verify_locations(cadata=b"".join(fresh))
            self._pins.update(fresh)
        return len(fresh)

    def trusted_pins(self) -> frozenset[bytes]:
        """Return the key pins of the certificates trusted now."""
        return frozenset(self._pins.values())

    def is_registered_peer(self, peer_certificate: bytes | None) -> bool:
        """Tell whether a peer's DER certificate (`getpeercert(binary_form=True)`) is trusted.

        A trusted certificate is a CA, so OpenSSL also accepts certificates it has issued; only
        the registry's own certificates name a node.
        """
        return peer_certificate is not None and peer_certificate in self._pins
