"""`danangchain network init`: write the homes of a new network's nodes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from cli.common import CliError, emit, json_option, password_option, read_password
from danangchain.address import compute_address, encode_address
from danangchain.errors import DecodeError
from danangchain.genesis import encode_genesis_json, make_genesis
from danangchain.validators import Validator
from node.config import NodeConfig, render_config
from node.keyfile import generate_signing_key, save_key
from node.tls import create_authority, issue_node_certificate


def init_network(
    folder: Path,
    validators: int,
    chain_id: str,
    base_port: int,
    password: str,
    full_nodes: int = 0,
    tls: bool = False,
) -> dict[str, Any]:
    """Create keys, genesis and one home per node (validators first); return what was made."""
    node_keys = [generate_signing_key() for _ in range(validators + full_nodes)]
    registrar = generate_signing_key()
    registrar_address = compute_address(registrar.public_key)
    genesis = make_genesis(
        chain_id,
        time.time_ns() // 1_000_000,
        [Validator(key.public_key, f"node{i}") for i, key in enumerate(node_keys[:validators])],
        [(registrar_address, "registrar")],
    )
    genesis_text = encode_genesis_json(genesis)
    folder.mkdir(parents=True, exist_ok=True)
    registrar_path = folder / "keys" / "registrar.json"
    save_key(registrar_path, "registrar", registrar, password)
    # Every node of the network may connect to every other: validators always may, the
    # full nodes are allowed by key.
    allowed = tuple(key.public_key.hex() for key in node_keys)
    configs = [
        NodeConfig(
            home=folder / f"node{i}",
            name=f"node{i}",
            api_port=base_port + 2 * i,
            p2p_port=base_port + 2 * i + 1,
            p2p_tls=tls,
            allowed_peers=allowed,
        )
        for i in range(len(node_keys))
    ]
    # A full mesh: every node talks to every other, so a full node voted in as a
    # validator already has its peers.
    all_peers = [c.p2p_url for c in configs]
    authority = create_authority(folder / "ca", chain_id) if tls else None
    nodes = []
    for index, (config, key) in enumerate(zip(configs, node_keys, strict=True)):
        peers = tuple(url for i, url in enumerate(all_peers) if i != index)
        config = replace(config, peers=peers)
        config.home.mkdir()
        if authority is not None:
            issue_node_certificate(*authority, config)
        (config.home / config.genesis_file).write_text(genesis_text)
        (config.home / "config.toml").write_text(render_config(config))
        save_key(config.home / config.key_file, config.name, key, password)
        nodes.append(
            {
                "name": config.name,
                "home": str(config.home),
                "api_url": config.api_url,
                "validator": index < validators,
                "p2p_url": config.p2p_url,
                "public_key": key.public_key.hex(),
                "address": encode_address(compute_address(key.public_key)),
            }
        )
    return {
        "chain_id": chain_id,
        "genesis_hash": genesis.hash.hex(),
        "nodes": nodes,
        "registrar": {
            "name": "registrar",
            "path": str(registrar_path),
            "address": encode_address(registrar_address),
        },
        "keystore": str(registrar_path.parent),
    }


@click.group()
def network() -> None:
    """Create a network (operators)."""


@network.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--validators",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="How many validator nodes.",
)
@click.option(
    "--full-nodes",
    type=click.IntRange(0, 16),
    default=0,
    show_default=True,
    help="How many non-validating nodes that follow the chain.",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Create a network certificate authority and a certificate per node; "
    "nodes then talk over mutual TLS.",
)
@click.option(
    "--chain-id",
    default="danangchain-local",
    show_default=True,
    help="The network's name; transactions signed for another chain are refused.",
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 65000),
    default=26657,
    show_default=True,
    help="API port of node0; node i uses base+2i (API) and base+2i+1 (peers).",
)
@password_option
@json_option
def network_init(
    folder: Path,
    validators: int,
    full_nodes: int,
    tls: bool,
    chain_id: str,
    base_port: int,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Write a new network into FOLDER: genesis, node homes and the registrar's key.

    Example: danangchain network init ./mynet --validators 4 --password-file pw.txt
    """
    if folder.exists() and any(folder.iterdir()):
        raise CliError(f"{folder} is not empty; choose a new folder")
    password = read_password(password_file, confirm=True)
    try:
        made = init_network(folder, validators, chain_id, base_port, password, full_nodes, tls)
    except DecodeError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write the network: {exc}") from None
    lines = [f"network {chain_id} (genesis {made['genesis_hash']})"]
    lines += [f"{n['name']}: home {n['home']}  api {n['api_url']}" for n in made["nodes"]]
    lines.append(f"registrar key: {made['registrar']['path']} ({made['registrar']['address']})")
    emit(as_json, made, lines)
