"""The steps by which independent organisations form a network, each on its own machine:
a node home with its own keys and a signed card (`node init`), a genesis made from the
cards (`genesis create`), and that genesis installed into each home (`node join`).
`network init` runs the same steps on one machine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cli.i18n import _, describe_error
from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.errors import DecodeError
from danangchain.genesis import Genesis, decode_genesis_json, encode_genesis_json, make_genesis
from danangchain.registry import (
    NodeCard,
    check_p2p_url,
    decode_card_json,
    encode_card_json,
    sign_card,
)
from danangchain.validators import Validator
from node.config import TRUST_REGISTRY, NodeConfig, load_config, render_config
from node.keyfile import generate_signing_key, save_key
from node.tls import create_tls_identity

CARD_FILE = "node-card.json"
TLS_FOLDER = "tls"
_API_URL = re.compile(r"^http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


class ConsortiumError(Exception):
    """A step that cannot be taken: the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A host and port taken from a URL."""

    scheme: str
    host: str
    port: int


def parse_p2p_url(url: str) -> Endpoint:
    """Return the scheme, host and port of a peer URL; raise ConsortiumError."""
    try:
        check_p2p_url(url)
    except DecodeError as exc:
        raise ConsortiumError(describe_error(exc)) from None
    scheme, rest = url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    return Endpoint(scheme, host.strip("[]"), int(port))


def parse_api_url(url: str) -> Endpoint:
    """Return the host and port of a client API URL (plain HTTP); raise ConsortiumError."""
    match = _API_URL.match(url)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise ConsortiumError(
            _(
                "{url} is not an API URL of the form http://host:port "
                "(put a TLS proxy in front of the API to serve it over HTTPS)"
            ).format(url=repr(url))
        )
    return Endpoint("http", match.group(1).strip("[]"), int(match.group(2)))


def init_node_home(
    home: Path,
    name: str,
    p2p_url: str,
    api_url: str,
    password: str,
    verify_workers: int | None = None,
) -> NodeCard:
    """Make a node's home: its encrypted node key, its own TLS identity when its peers use
    HTTPS (key encrypted too), config.toml and the signed node-card.json. Nothing but the
    card is meant to leave the machine. `verify_workers` None is "auto"."""
    p2p = parse_p2p_url(p2p_url)
    api = parse_api_url(api_url)
    if home.exists() and any(home.iterdir()):
        raise ConsortiumError(
            _("{home} is not empty; choose a new folder for the node home").format(home=home)
        )
    home.mkdir(parents=True, exist_ok=True)
    config = NodeConfig(
        home=home,
        name=name,
        api_host=api.host,
        api_port=api.port,
        p2p_host=p2p.host,
        p2p_port=p2p.port,
        p2p_tls=p2p.scheme == "https",
        tls_trust=TRUST_REGISTRY,
        verify_workers=verify_workers,
    )
    key = generate_signing_key()
    certificate = None
    if config.p2p_tls:
        certificate = create_tls_identity(
            home / TLS_FOLDER, name, sorted({p2p.host, api.host}), password
        )
    try:
        card = sign_card(key, name, [p2p_url], certificate)
    except DecodeError as exc:
        raise ConsortiumError(describe_error(exc)) from None
    save_key(home / config.key_file, name, key, password)
    (home / "config.toml").write_text(render_config(config))
    (home / CARD_FILE).write_text(encode_card_json(card))
    return card


def read_card(path: Path) -> NodeCard:
    """Read and check a node card file; raise ConsortiumError."""
    try:
        return decode_card_json(path.read_text())
    except OSError as exc:
        raise ConsortiumError(
            _("cannot read the card {path}: {reason}").format(path=path, reason=exc.strerror)
        ) from None
    except DecodeError as exc:
        raise ConsortiumError(f"{path}: {describe_error(exc)}") from None


def parse_registrar_key(text: str) -> bytes:
    """Return a registrar's address from its public key (64 hex); raise ConsortiumError."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32 or not ed25519.is_strict_public_key(key):
        raise ConsortiumError(
            _("registrar key {key} is not a safe Ed25519 public key (64 hex)").format(
                key=repr(text)
            )
        )
    return compute_address(key)


def create_genesis(
    chain_id: str,
    validator_cards: list[NodeCard],
    registrar_keys: list[str],
    full_node_cards: list[NodeCard],
    time_ms: int,
) -> Genesis:
    """Build the genesis of a network from its organisations' cards and registrar keys:
    the same inputs, in any order, give the same genesis."""
    if not validator_cards:
        raise ConsortiumError(_("a genesis needs at least one validator card"))
    if not registrar_keys:
        raise ConsortiumError(_("a genesis needs at least one registrar key"))
    registrars = [parse_registrar_key(text) for text in registrar_keys]
    if len(set(registrars)) != len(registrars):
        raise ConsortiumError(_("a registrar key is given twice"))
    validators = [Validator(card.public_key, card.name) for card in validator_cards]
    try:
        return make_genesis(
            chain_id,
            time_ms,
            validators,
            [(address, "registrar") for address in registrars],
            [*validator_cards, *full_node_cards],
        )
    except DecodeError as exc:
        raise ConsortiumError(describe_error(exc)) from None


def join_home(home: Path, genesis_text: str, expected_hash: str | None = None) -> Genesis:
    """Install a genesis made elsewhere into a home made by `node init`, after checking
    it is the announced one and that it lists this node's card unchanged (a full node
    that is admitted later need not be listed)."""
    try:
        genesis = decode_genesis_json(genesis_text)
    except DecodeError as exc:
        raise ConsortiumError(describe_error(exc)) from None
    if expected_hash is not None and genesis.hash.hex() != expected_hash.lower():
        raise ConsortiumError(
            _("the genesis hash is {actual}, not the announced {expected}").format(
                actual=genesis.hash.hex(), expected=expected_hash
            )
        )
    config = load_config(home)
    card = read_card(home / CARD_FILE)
    listed = [c for c in genesis.nodes if c.public_key == card.public_key]
    if listed and listed[0] != card:
        raise ConsortiumError(_("the genesis lists this node's key with another card"))
    if not listed and genesis.validator_set.power_of(card.public_key) > 0:
        raise ConsortiumError(_("the genesis makes this node a validator without its card"))
    target = config.path(config.genesis_file)
    text = encode_genesis_json(genesis)
    if target.exists() and target.read_text() != text:
        raise ConsortiumError(_("{target} already holds another genesis").format(target=target))
    target.write_text(text)
    return genesis
