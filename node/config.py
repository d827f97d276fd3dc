"""A node home's config.toml: read strictly, written from one template."""

from __future__ import annotations

import difflib
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from danangchain.errors import DecodeError
from danangchain.genesis import Genesis, decode_genesis_json

CONFIG_FILE = "config.toml"
# How many blocks behind its highest peer a node may be and still be ready: the default of
# /readiness and of `node wait-synced`.
DEFAULT_MAX_BLOCKS_BEHIND = 2
# Where a node's TLS trust comes from: the network authority's certificate (homes made by
# earlier versions) or the certificates the chain's node registry holds.
TRUST_AUTHORITY = "authority"
TRUST_REGISTRY = "registry"
# Every setting a config.toml may hold: what render_config writes today and wrote in
# earlier versions (those homes lack [tls] and some keys; each has a default).
SETTINGS: dict[str, frozenset[str]] = {
    "node": frozenset({"name", "genesis_file", "key_file", "data_dir", "verify_workers"}),
    "api": frozenset({"host", "port", "tls"}),
    "p2p": frozenset({"host", "port", "peers", "allowed_peers", "tls"}),
    "tls": frozenset({"trust", "ca_file", "cert_file", "key_file"}),
    "block": frozenset({"min_interval_ms", "max_txs"}),
    "mempool": frozenset({"max_txs", "max_bytes"}),
}
REQUIRED_SECTIONS = ("node", "api", "p2p")
# [node] verify_workers: how many processes check signatures beside the event loop.
AUTO_WORKERS = "auto"
MAX_VERIFY_WORKERS = 64


class ConfigError(Exception):
    """A config file that is missing or malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a node reads from its home folder's config.toml."""

    home: Path
    name: str
    api_host: str = "127.0.0.1"
    api_port: int = 26657
    p2p_host: str = "127.0.0.1"
    p2p_port: int = 26656
    peers: tuple[str, ...] = field(default_factory=tuple)
    allowed_peers: tuple[str, ...] = field(default_factory=tuple)
    p2p_tls: bool = False
    api_tls: bool = False
    tls_ca_file: str = "tls/ca.pem"
    tls_cert_file: str = "tls/node.pem"
    tls_key_file: str = "tls/node.key"
    tls_trust: str = TRUST_AUTHORITY
    genesis_file: str = "genesis.json"
    key_file: str = "node_key.json"
    data_dir: str = "data"
    # None: "auto", one per core (node/chain/verify_pool.py).
    verify_workers: int | None = None
    block_min_interval_ms: int = 50
    block_max_txs: int = 5000
    mempool_max_txs: int = 50_000
    mempool_max_bytes: int = 64 * 1024 * 1024

    @property
    def api_url(self) -> str:
        """Return the URL clients use to reach this node's API."""
        scheme = "https" if self.api_tls else "http"
        return f"{scheme}://{self.api_host}:{self.api_port}"

    @property
    def p2p_url(self) -> str:
        """Return the URL peers use to reach this node."""
        scheme = "https" if self.p2p_tls else "http"
        return f"{scheme}://{self.p2p_host}:{self.p2p_port}"

    def path(self, relative: str) -> Path:
        """Return a path from the config, resolved against the home folder."""
        return self.home / relative


def render_config(config: NodeConfig) -> str:
    """Return the text of config.toml for a node."""
    peers = ", ".join(f'"{peer}"' for peer in config.peers)
    allowed = ", ".join(f'"{key}"' for key in config.allowed_peers)
    tls_api = "true" if config.api_tls else "false"
    tls_p2p = "true" if config.p2p_tls else "false"
    return f"""# DanangChain node configuration. Paths are relative to this folder.
[node]
name = "{config.name}"
genesis_file = "{config.genesis_file}"
key_file = "{config.key_file}"
data_dir = "{config.data_dir}"
# Processes that check transaction signatures beside the event loop: "auto" (one per
# core, below the loop in priority) or a number (0: all in the node's own process, e.g.
# when several nodes share one machine).
verify_workers = {render_workers(config.verify_workers)}

[api]
# The client API (JSON over HTTP). Keep it on 127.0.0.1 unless a proxy guards it.
host = "{config.api_host}"
port = {config.api_port}
# Serve the API over TLS with this node's certificate (clients check it against the CA).
tls = {tls_api}

[p2p]
host = "{config.p2p_host}"
port = {config.p2p_port}
peers = [{peers}]
# Public keys (hex) of non-validator nodes that may connect; validators always may.
allowed_peers = [{allowed}]
# Mutual TLS between nodes: only certificates from the network's authority are accepted.
tls = {tls_p2p}

[tls]
# registry: trust the TLS certificates the chain's node registry holds (each node made
# its own; its key is encrypted with the node key's password). authority: trust ca_file.
trust = "{config.tls_trust}"
ca_file = "{config.tls_ca_file}"
cert_file = "{config.tls_cert_file}"
key_file = "{config.tls_key_file}"

[block]
# A lone validator makes a block as soon as transactions wait, at most one per
# min_interval_ms after its last commit.
min_interval_ms = {config.block_min_interval_ms}
max_txs = {config.block_max_txs}

[mempool]
max_txs = {config.mempool_max_txs}
max_bytes = {config.mempool_max_bytes}
"""


def render_workers(workers: int | None) -> str:
    """Return [node] verify_workers as TOML."""
    return f'"{AUTO_WORKERS}"' if workers is None else str(workers)


def _get_workers(table: dict[str, Any]) -> int | None:
    """Return [node] verify_workers: None for "auto", else a count; raise ConfigError."""
    value = table.get("node", {}).get("verify_workers", AUTO_WORKERS)
    if value == AUTO_WORKERS:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f'config: [node] verify_workers must be "{AUTO_WORKERS}" or a number')
    if not 0 <= value <= MAX_VERIFY_WORKERS:
        raise ConfigError(
            f"config: [node] verify_workers must be between 0 and {MAX_VERIFY_WORKERS}"
        )
    return value


def _get(table: dict[str, Any], section: str, name: str, kind: type, default: Any) -> Any:
    """Return one typed field of a section, or its default; raise ConfigError if mistyped."""
    value = table.get(section, {}).get(name, default)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"config: [{section}] {name} must be an integer")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"config: [{section}] {name} must be a string")
    if kind is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ConfigError(f"config: [{section}] {name} must be a list of strings")
    return value


def _get_bool(table: dict[str, Any], section: str, name: str) -> bool:
    """Return a boolean field (default false); raise ConfigError if mistyped."""
    value = table.get(section, {}).get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"config: [{section}] {name} must be true or false")
    return value


def _suggestion(name: str, known: frozenset[str] | dict[str, frozenset[str]]) -> str:
    """Return " (did you mean X?)" for the known name closest to a misspelt one, or ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _outside_sections(path: Path, name: str) -> ConfigError:
    """Return the error for a setting written above every [section] header."""
    homes = [section for section, names in SETTINGS.items() if name in names]
    where = f" (did you mean [{homes[0]}] {name}?)" if homes else _suggestion(name, SETTINGS)
    return ConfigError(f"{path}: unknown setting {name} outside any [section]{where}")


def check_settings(path: Path, table: dict[str, Any]) -> None:
    """Refuse a config with an unknown section or setting, or without a required section."""
    if not table:
        raise ConfigError(f"{path} is empty: is it truncated? 'node init' writes a full one")
    for section, settings in table.items():
        if section not in SETTINGS:
            if not isinstance(settings, dict):
                raise _outside_sections(path, section)
            hint = _suggestion(section, SETTINGS)
            raise ConfigError(f"{path}: unknown section [{section}]{hint}")
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: {section} must be a section, written [{section}]")
        for name in settings:
            if name not in SETTINGS[section]:
                hint = _suggestion(name, SETTINGS[section])
                raise ConfigError(f"{path}: unknown setting [{section}] {name}{hint}")
    for section in REQUIRED_SECTIONS:
        if section not in table:
            raise ConfigError(f"{path}: section [{section}] is missing: is the file truncated?")


def check_hosts(config: NodeConfig) -> None:
    """Refuse to start on an [api] or [p2p] host that does not resolve to an address.

    A name may wait on DNS, so this runs when a node starts, not whenever a config is read.
    """
    for section, host, port in (
        ("api", config.api_host, config.api_port),
        ("p2p", config.p2p_host, config.p2p_port),
    ):
        if not host:  # asyncio listens on every interface
            continue
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(
                f"{config.path(CONFIG_FILE)}: [{section}] host {host!r} does not resolve "
                f"({reason}): give an IP address or a name this machine can look up"
            ) from None


def parse_allowed_peers(config: NodeConfig) -> frozenset[bytes]:
    """Return the configured peer keys, refusing malformed entries."""
    keys = set()
    for text in config.allowed_peers:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError(f"config: [p2p] allowed_peers: {text!r} is not a 64-hex public key")
        keys.add(key)
    return frozenset(keys)


def load_config(home: Path) -> NodeConfig:
    """Read a node's config.toml from its home folder."""
    path = home / CONFIG_FILE
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found: is {home} a node home made by 'network init'?"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    check_settings(path, table)
    d = NodeConfig(home=home, name="")
    config = NodeConfig(
        home=home,
        name=_get(table, "node", "name", str, home.name),
        genesis_file=_get(table, "node", "genesis_file", str, d.genesis_file),
        key_file=_get(table, "node", "key_file", str, d.key_file),
        data_dir=_get(table, "node", "data_dir", str, d.data_dir),
        verify_workers=_get_workers(table),
        api_host=_get(table, "api", "host", str, d.api_host),
        api_port=_get(table, "api", "port", int, d.api_port),
        p2p_host=_get(table, "p2p", "host", str, d.p2p_host),
        p2p_port=_get(table, "p2p", "port", int, d.p2p_port),
        peers=tuple(_get(table, "p2p", "peers", list, [])),
        allowed_peers=tuple(_get(table, "p2p", "allowed_peers", list, [])),
        p2p_tls=_get_bool(table, "p2p", "tls"),
        api_tls=_get_bool(table, "api", "tls"),
        tls_ca_file=_get(table, "tls", "ca_file", str, d.tls_ca_file),
        tls_cert_file=_get(table, "tls", "cert_file", str, d.tls_cert_file),
        tls_key_file=_get(table, "tls", "key_file", str, d.tls_key_file),
        tls_trust=_get(table, "tls", "trust", str, d.tls_trust),
        block_min_interval_ms=_get(table, "block", "min_interval_ms", int, d.block_min_interval_ms),
        block_max_txs=_get(table, "block", "max_txs", int, d.block_max_txs),
        mempool_max_txs=_get(table, "mempool", "max_txs", int, d.mempool_max_txs),
        mempool_max_bytes=_get(table, "mempool", "max_bytes", int, d.mempool_max_bytes),
    )
    if not 0 < config.api_port < 65536 or not 0 < config.p2p_port < 65536:
        raise ConfigError("config: ports must be between 1 and 65535")
    if not 1 <= config.block_max_txs <= 5000:
        raise ConfigError("config: [block] max_txs must be between 1 and 5000")
    if config.tls_trust not in (TRUST_AUTHORITY, TRUST_REGISTRY):
        raise ConfigError(
            f"config: [tls] trust must be {TRUST_REGISTRY!r} or {TRUST_AUTHORITY!r}, "
            f"not {config.tls_trust!r}"
        )
    return config


def load_genesis(config: NodeConfig) -> Genesis:
    """Read and parse the genesis file named by a node's config."""
    path = config.path(config.genesis_file)
    try:
        return decode_genesis_json(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read genesis file {path}: {exc.strerror}") from None
    except DecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
