"""The node registry: each organisation's signed node card, and the entries the chain's
state keeps for every validator and admitted full node (who they are, where they are
reached, the TLS certificate they present).

A card is made by a node on its own machine and signed by its node key; only the card
ever leaves that machine. Genesis carries the first cards; transactions admit, move and
remove nodes later (danangchain/rules.py applies them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from danangchain import ed25519
from danangchain.encoding import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_str,
    pack,
    unpack,
)
from danangchain.errors import DanangChainError, DecodeError
from danangchain.signing import compute_node_card_signing_bytes

CARD_VERSION = 1
MAX_NODE_NAME_SIZE = 64
MAX_P2P_URLS = 4
MAX_URL_SIZE = 200
MAX_CERTIFICATE_SIZE = 4096
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
NODE_ROLE_VALIDATOR = "validator"
NODE_ROLE_FULL = "full"
NODE_ROLES = (NODE_ROLE_VALIDATOR, NODE_ROLE_FULL)
# http(s)://host:port with no path, query or user part; host a name, IPv4 or [IPv6].
_URL = re.compile(r"^(http|https)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


@dataclass(frozen=True, slots=True)
class NodeCard:
    """A node's signed self-description: name, key, where peers reach it, its TLS
    certificate (PEM, or None for a node that speaks plain HTTP to its peers)."""

    name: str
    public_key: bytes
    p2p_urls: tuple[str, ...]
    tls_certificate: bytes | None
    signature: bytes


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """What the chain's state holds for one registered node."""

    name: str
    p2p_urls: tuple[str, ...]
    tls_certificate: bytes | None
    role: str
    since_height: int


def check_p2p_url(url: str) -> str:
    """Return a peer URL if it is http(s)://host:port (nothing more); raise DecodeError."""
    match = _URL.match(url) if len(url) <= MAX_URL_SIZE else None
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise DecodeError(f"{url!r} is not a peer URL of the form http(s)://host:port")
    return url


def check_node_name(name: str) -> str:
    """Return a node name of 1..64 printable characters; raise DecodeError."""
    if not name or len(name.encode()) > MAX_NODE_NAME_SIZE or not name.isprintable():
        raise DecodeError(f"node name {name!r} must be 1 to {MAX_NODE_NAME_SIZE} printable bytes")
    return name


def check_p2p_urls(urls: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Return 1..MAX_P2P_URLS distinct peer URLs; raise DecodeError."""
    if not 1 <= len(urls) <= MAX_P2P_URLS:
        raise DecodeError(f"a node is reached at 1 to {MAX_P2P_URLS} peer URLs")
    if len(set(urls)) != len(urls):
        raise DecodeError("a peer URL is listed twice")
    return tuple(check_p2p_url(url) for url in urls)


def check_tls_certificate(certificate: bytes | None) -> bytes | None:
    """Return a PEM certificate's bytes if they look like one (bounded), or None."""
    if certificate is None:
        return None
    if len(certificate) > MAX_CERTIFICATE_SIZE or not certificate.startswith(PEM_CERTIFICATE):
        raise DecodeError(
            f"a TLS certificate must be one PEM certificate of at most {MAX_CERTIFICATE_SIZE} bytes"
        )
    return certificate


def compute_card_signing_bytes(card: NodeCard) -> bytes:
    """Return the bytes a card's signature covers."""
    return compute_node_card_signing_bytes(
        card.name, card.public_key, list(card.p2p_urls), card.tls_certificate
    )


def sign_card(
    key: ed25519.SigningKey,
    name: str,
    p2p_urls: list[str] | tuple[str, ...],
    tls_certificate: bytes | None,
) -> NodeCard:
    """Return a node's card signed by its node key (its fields checked first)."""
    unsigned = NodeCard(
        check_node_name(name),
        key.public_key,
        check_p2p_urls(tuple(p2p_urls)),
        check_tls_certificate(tls_certificate),
        b"",
    )
    signature = ed25519.sign(key, compute_card_signing_bytes(unsigned))
    return NodeCard(unsigned.name, key.public_key, unsigned.p2p_urls, tls_certificate, signature)


def is_card_signed(card: NodeCard) -> bool:
    """Tell whether a card is signed by the key it names (a strict, safe key)."""
    return ed25519.is_strict_public_key(card.public_key) and ed25519.is_valid_signature(
        card.public_key, compute_card_signing_bytes(card), card.signature
    )


def encode_card_fields(card: NodeCard) -> list[Any]:
    """Return a card's fixed-order field array (as transactions and genesis carry it)."""
    return [
        CARD_VERSION,
        card.name,
        card.public_key,
        list(card.p2p_urls),
        card.tls_certificate,
        card.signature,
    ]


def decode_card_fields(fields: Any) -> NodeCard:
    """Decode and check a card's field array (not its signature); raise DecodeError."""
    version, name, public_key, urls, certificate, signature = expect_list(fields, 6, "node card")
    if version != CARD_VERSION or type(version) is not int:
        raise DecodeError(f"node card version {version!r} is not supported")
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise DecodeError("node card p2p_urls: expected an array of strings")
    return NodeCard(
        check_node_name(expect_str(name, "node card name", MAX_NODE_NAME_SIZE)),
        expect_bytes(public_key, "node card public_key", size=ed25519.PUBLIC_KEY_SIZE),
        check_p2p_urls(urls),
        check_tls_certificate(
            None
            if certificate is None
            else expect_bytes(certificate, "node card tls", max_size=MAX_CERTIFICATE_SIZE)
        ),
        expect_bytes(signature, "node card signature", size=64),
    )


def encode_card_json(card: NodeCard) -> str:
    """Return the node-card.json document an organisation shares."""
    document = {
        "version": CARD_VERSION,
        "name": card.name,
        "public_key": card.public_key.hex(),
        "p2p_urls": list(card.p2p_urls),
        "tls_certificate": None
        if card.tls_certificate is None
        else card.tls_certificate.decode("ascii"),
        "signature": card.signature.hex(),
    }
    return json.dumps(document, indent=2) + "\n"


def decode_card_json(text: str) -> NodeCard:
    """Parse a node-card.json document and check its signature; raise DecodeError."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise DecodeError("expected a JSON object")
        certificate = document.get("tls_certificate")
        card = decode_card_fields(
            [
                document.get("version"),
                document["name"],
                bytes.fromhex(document["public_key"]),
                document["p2p_urls"],
                None if certificate is None else str(certificate).encode("ascii"),
                bytes.fromhex(document["signature"]),
            ]
        )
    except DanangChainError as exc:
        raise DecodeError(f"node card: {exc}") from None
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, RecursionError) as exc:
        raise DecodeError(f"node card: malformed document ({exc!r})") from None
    if not is_card_signed(card):
        raise DecodeError(f"node card {card.name!r}: the signature does not match its key")
    return card


def encode_node_entry(entry: NodeEntry) -> bytes:
    """Encode a registry entry."""
    return pack(
        [entry.name, list(entry.p2p_urls), entry.tls_certificate, entry.role, entry.since_height]
    )


def decode_node_entry(data: bytes) -> NodeEntry:
    """Decode a registry entry."""
    name, urls, certificate, role, since = expect_list(unpack(data), 5, "node entry")
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise DecodeError("node entry p2p_urls: expected an array of strings")
    role = expect_str(role, "node entry role", 16)
    if role not in NODE_ROLES:
        raise DecodeError(f"node entry role {role!r} is not one of {', '.join(NODE_ROLES)}")
    return NodeEntry(
        expect_str(name, "node entry name", MAX_NODE_NAME_SIZE),
        tuple(urls),
        None if certificate is None else expect_bytes(certificate, "node entry tls"),
        role,
        expect_int(since, "node entry since_height"),
    )


def entry_from_card(card: NodeCard, role: str, height: int) -> NodeEntry:
    """Return the registry entry a card makes."""
    return NodeEntry(card.name, card.p2p_urls, card.tls_certificate, role, height)
