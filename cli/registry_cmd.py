"""Commands that form a network of independent organisations and keep its node registry:
`node init`, `node join`, `node announce`, `node admit`, `node remove` and `genesis create`
(`query nodes` is in cli/query.py). The steps themselves are in cli/consortium.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from cli.client import NodeClient
from cli.common import (
    CliError,
    emit,
    json_option,
    parse_public_key,
    password_option,
    read_password,
)
from cli.consortium import (
    CARD_FILE,
    ConsortiumError,
    create_genesis,
    init_node_home,
    join_home,
    parse_p2p_url,
    read_card,
)
from cli.i18n import TranslatedGroup, _, describe_error
from cli.node_cmd import node
from cli.submit import report_submission, sign_submit_and_report, submission_options, submit
from danangchain.errors import DecodeError, KeystoreError
from danangchain.genesis import encode_genesis_json
from danangchain.registry import encode_card_json, sign_card
from danangchain.transaction import NodeAdmitBody, NodeAnnounceBody, NodeRemoveBody
from node.config import ConfigError, load_config, render_config
from node.keyfile import read_keystore, unlock_key

home_argument = click.argument("home", type=click.Path(file_okay=False, path_type=Path))


@node.command("init")
@home_argument
@click.option("--name", required=True, help="The node's name, e.g. the department's.")
@click.option(
    "--p2p-url",
    required=True,
    help="Where peers reach this node: http(s)://host:port (https: mutual TLS).",
)
@click.option(
    "--api-url",
    default="http://127.0.0.1:26657",
    show_default=True,
    help="Where this node serves its client API.",
)
@password_option
@json_option
def node_init(
    home: Path,
    name: str,
    p2p_url: str,
    api_url: str,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Make a node home on this machine: its encrypted keys, config.toml and the signed
    node card (HOME/node-card.json), the only file that leaves the machine.

    Example: danangchain node init ./finance --name "Dept. of Finance"
    --p2p-url https://10.0.0.2:26656 --password-file pw.txt
    """
    password = read_password(password_file, confirm=True)
    try:
        card = init_node_home(home, name, p2p_url, api_url, password)
    except ConsortiumError as exc:
        raise CliError(describe_error(exc)) from None
    except (OSError, KeystoreError) as exc:
        raise CliError(
            _("cannot write the node home: {reason}").format(reason=describe_error(exc))
        ) from None
    made = {
        "home": str(home),
        "name": card.name,
        "public_key": card.public_key.hex(),
        "p2p_urls": list(card.p2p_urls),
        "tls": card.tls_certificate is not None,
        "card": str(home / CARD_FILE),
    }
    lines = [
        _("node {name}: home {home}").format(name=card.name, home=home),
        _("public key {key}").format(key=card.public_key.hex()),
        _("card {path}: share it with the other organisations").format(path=home / CARD_FILE),
    ]
    emit(as_json, made, lines)


@node.command("join")
@home_argument
@click.option(
    "--genesis",
    "genesis_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The genesis.json made by 'genesis create'.",
)
@click.option("--genesis-hash", help="The genesis hash announced; refuse any other.")
@json_option
def node_join(home: Path, genesis_file: Path, genesis_hash: str | None, as_json: bool) -> None:
    """Install a genesis made elsewhere into a home made by 'node init', after checking
    that it lists this node's card unchanged.

    Example: danangchain node join ./finance --genesis genesis.json --genesis-hash 9c1e...
    """
    try:
        genesis = join_home(home, genesis_file.read_text(), genesis_hash)
    except (ConsortiumError, ConfigError) as exc:
        raise CliError(describe_error(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(_("cannot read or write the genesis: {reason}").format(reason=exc)) from None
    made = {"home": str(home), "chain_id": genesis.chain_id, "genesis_hash": genesis.hash.hex()}
    joined = _("joined {chain_id} (genesis {genesis_hash})").format(
        chain_id=genesis.chain_id, genesis_hash=genesis.hash.hex()
    )
    emit(as_json, made, [joined])


@node.command("announce")
@click.option(
    "--home", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True
)
@click.option("--p2p-url", required=True, help="The node's new peer URL.")
@click.option("--wait", is_flag=True, help="Wait until the move is committed.")
@click.option("--node", "node_url", help="The API to submit to (default: this home's).")
@password_option
@json_option
def node_announce(
    home: Path,
    p2p_url: str,
    wait: bool,
    node_url: str | None,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Move this node to a new peer URL: signed by its own key, written to the registry,
    and to this home's card and config (restart the node to listen there).

    Example: danangchain node announce --home ./finance --p2p-url https://10.0.1.2:26656
    """
    try:
        config = load_config(home)
        endpoint = parse_p2p_url(p2p_url)
        card = read_card(home / CARD_FILE)
        password = read_password(password_file)
        key = unlock_key(read_keystore(config.path(config.key_file)), password)
        moved = sign_card(key, card.name, [p2p_url], card.tls_certificate)
    except (ConsortiumError, ConfigError, KeystoreError, DecodeError) as exc:
        raise CliError(describe_error(exc)) from None
    if (endpoint.scheme == "https") != config.p2p_tls:
        raise CliError(_("a node keeps its peers' scheme: announce a URL with the same scheme"))
    body = NodeAnnounceBody(moved.p2p_urls, moved.tls_certificate)
    result = submit(NodeClient(node_url or config.api_url), key, body, wait)
    if result["status"] != "rejected":
        (home / CARD_FILE).write_text(encode_card_json(moved))
        moved_config = replace(config, p2p_host=endpoint.host, p2p_port=endpoint.port)
        (home / "config.toml").write_text(render_config(moved_config))
    report_submission(result, as_json)


@node.command("admit")
@click.option(
    "--card",
    "card_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The full node's node-card.json.",
)
@submission_options
def node_admit(card_file: Path, **submission: Any) -> None:
    """Admit a full node into the registry from its card (registrars).

    Example: danangchain node admit --card partner/node-card.json --from registrar --wait
    """
    try:
        card = read_card(card_file)
    except ConsortiumError as exc:
        raise CliError(describe_error(exc)) from None
    sign_submit_and_report(NodeAdmitBody(card), **submission)


@node.command("remove")
@click.argument("pubkey")
@submission_options
def node_remove(pubkey: str, **submission: Any) -> None:
    """Remove the full node PUBKEY from the registry (registrars); its peers refuse it
    from the next block on.

    Example: danangchain node remove 3f2a... --from registrar --wait
    """
    sign_submit_and_report(NodeRemoveBody(parse_public_key(pubkey)), **submission)


@click.group(cls=TranslatedGroup)
def genesis() -> None:
    """Make a network's genesis from its organisations' cards (operators)."""


@genesis.command("create")
@click.option("--chain-id", required=True, help="The network's name.")
@click.option(
    "--validator",
    "validator_cards",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A validator's node-card.json (repeat for each).",
)
@click.option(
    "--registrar",
    "registrar_keys",
    multiple=True,
    required=True,
    help="A registrar's public key, 64 hex ('keys show NAME --json'); repeat for each.",
)
@click.option(
    "--full-node",
    "full_node_cards",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A full node's node-card.json (repeat for each).",
)
@click.option(
    "--time-ms",
    type=click.IntRange(0, 2**53),
    default=0,
    show_default=True,
    help="Genesis time (Unix ms); the same for everyone, so the hash is.",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Where to write."
)
@json_option
def genesis_create(
    chain_id: str,
    validator_cards: tuple[Path, ...],
    registrar_keys: tuple[str, ...],
    full_node_cards: tuple[Path, ...],
    time_ms: int,
    out: Path,
    as_json: bool,
) -> None:
    """Check every card's signature and write the genesis: the same cards in any order
    give the same genesis hash, which it prints so that each organisation compares.

    Example: danangchain genesis create --chain-id danang --validator a.json
    --validator b.json --registrar 3f2a... --out genesis.json
    """
    if out.exists():
        raise CliError(_("{out} already exists; choose another --out").format(out=out))
    try:
        made = create_genesis(
            chain_id,
            [read_card(path) for path in validator_cards],
            list(registrar_keys),
            [read_card(path) for path in full_node_cards],
            time_ms,
        )
        out.write_text(encode_genesis_json(made))
    except ConsortiumError as exc:
        raise CliError(describe_error(exc)) from None
    except OSError as exc:
        raise CliError(
            _("cannot write {path}: {reason}").format(path=out, reason=exc.strerror)
        ) from None
    result = {
        "chain_id": made.chain_id,
        "genesis_hash": made.hash.hex(),
        "validators": len(made.validator_set.validators),
        "nodes": len(made.nodes),
        "out": str(out),
    }
    written = _("genesis {genesis_hash} written to {out}").format(
        genesis_hash=made.hash.hex(), out=out
    )
    emit(as_json, result, [written])
