"""`danangchain network init`: write the homes of a new network's nodes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from cli.common import CliError, emit, json_option, password_option, read_password
from cli.consortium import CARD_FILE, ConsortiumError, create_genesis, init_node_home, join_home
from cli.i18n import TranslatedGroup, _, describe_error
from danangchain.address import compute_address, encode_address
from danangchain.errors import DecodeError
from danangchain.genesis import encode_genesis_json
from node.keyfile import generate_signing_key, save_key


def init_network(
    folder: Path,
    validators: int,
    chain_id: str,
    base_port: int,
    password: str,
    full_nodes: int = 0,
    tls: bool = False,
) -> dict[str, Any]:
    """Make a network on this machine by the same steps organisations take on theirs:
    `node init` per node (validators first), `genesis create` from their cards and the
    registrar's public key, and `node join` of each home; return what was made."""
    folder.mkdir(parents=True, exist_ok=True)
    scheme = "https" if tls else "http"
    # Several nodes on one machine already keep its cores busy: each checks signatures
    # in its own process (worker processes would only add their traffic).
    workers = 0 if validators + full_nodes > 1 else None
    cards = []
    for index in range(validators + full_nodes):
        api_port, p2p_port = base_port + 2 * index, base_port + 2 * index + 1
        cards.append(
            init_node_home(
                folder / f"node{index}",
                f"node{index}",
                f"{scheme}://127.0.0.1:{p2p_port}",
                f"http://127.0.0.1:{api_port}",
                password,
                workers,
            )
        )
    registrar = generate_signing_key()
    registrar_path = folder / "keys" / "registrar.json"
    save_key(registrar_path, "registrar", registrar, password)
    genesis = create_genesis(
        chain_id,
        cards[:validators],
        [registrar.public_key.hex()],
        cards[validators:],
        time.time_ns() // 1_000_000,
    )
    genesis_text = encode_genesis_json(genesis)
    nodes = []
    for index, card in enumerate(cards):
        home = folder / card.name
        join_home(home, genesis_text, genesis.hash.hex())
        nodes.append(
            {
                "name": card.name,
                "home": str(home),
                "api_url": f"http://127.0.0.1:{base_port + 2 * index}",
                "validator": index < validators,
                "p2p_url": card.p2p_urls[0],
                "public_key": card.public_key.hex(),
                "address": encode_address(compute_address(card.public_key)),
                "card": str(home / CARD_FILE),
            }
        )
    return {
        "chain_id": chain_id,
        "genesis_hash": genesis.hash.hex(),
        "nodes": nodes,
        "registrar": {
            "name": "registrar",
            "path": str(registrar_path),
            "address": encode_address(compute_address(registrar.public_key)),
        },
        "keystore": str(registrar_path.parent),
    }


@click.group(cls=TranslatedGroup)
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
    help="Give each node its own TLS identity, listed in its card; nodes then talk over "
    "mutual TLS, trusting exactly the certificates the node registry holds.",
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
        raise CliError(_("{folder} is not empty; choose a new folder").format(folder=folder))
    password = read_password(password_file, confirm=True)
    try:
        made = init_network(folder, validators, chain_id, base_port, password, full_nodes, tls)
    except (DecodeError, ConsortiumError) as exc:
        raise CliError(describe_error(exc)) from None
    except OSError as exc:
        raise CliError(_("cannot write the network: {reason}").format(reason=exc)) from None
    lines = [
        _("network {chain_id} (genesis {genesis_hash})").format(
            chain_id=chain_id, genesis_hash=made["genesis_hash"]
        )
    ]
    lines += [
        _("{name}: home {home}  api {api_url}").format(
            name=n["name"], home=n["home"], api_url=n["api_url"]
        )
        for n in made["nodes"]
    ]
    lines.append(
        _("registrar key: {path} ({address})").format(
            path=made["registrar"]["path"], address=made["registrar"]["address"]
        )
    )
    emit(as_json, made, lines)
