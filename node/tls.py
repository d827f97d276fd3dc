"""The network's certificate authority and mutual TLS between nodes."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.config import NodeConfig

VALIDITY = datetime.timedelta(days=3650)


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
