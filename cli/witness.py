"""`danangchain witness start`: follow a chain, check it, cosign its checkpoints (bodies
outside the validator set: an inspectorate, a university)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.audit import genesis_pin_options, read_pinned_hash
from cli.client import NodeClient
from cli.common import (
    CliError,
    is_node_url,
    keystore_option,
    load_signing_key,
    password_option,
)
from cli.i18n import TranslatedGroup, _
from cli.submit import complete_key_names, submit
from danangchain import ed25519
from danangchain.checkpoint import Cosignature, make_checkpoint_body
from danangchain.errors import DecodeError
from danangchain.genesis import Genesis
from danangchain.transaction import ROLE_WITNESS

if TYPE_CHECKING:
    from node.witness.journal import WitnessJournal

DEFAULT_LISTEN = "127.0.0.1:26680"

log = logging.getLogger("danangchain.witness")


@click.group(cls=TranslatedGroup)
def witness() -> None:
    """Run a witness that checks the chain and cosigns checkpoints (outside bodies)."""


def parse_listen(text: str) -> tuple[str, int]:
    """Parse HOST:PORT for the witness's API."""
    host, _sep, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(
            _("--listen {value} must be HOST:PORT, e.g. {example}").format(
                value=repr(text), example=DEFAULT_LISTEN
            )
        )
    return host.strip("[]"), int(port)


def check_node_urls(urls: tuple[str, ...]) -> list[str]:
    """Refuse a --node that is not scheme://host:port."""
    for url in urls:
        if not is_node_url(url):
            raise CliError(
                _("--node {url} must be scheme://host:port with no path, e.g. {example}").format(
                    url=repr(url), example="http://127.0.0.1:26657"
                )
            )
    return [url.rstrip("/") for url in urls]


@witness.command("start")
@click.option(
    "--node",
    "node_urls",
    multiple=True,
    required=True,
    help="A node to follow (repeat to follow several: any contradiction between them is caught).",
)
@click.option(
    "--key",
    "key_name",
    required=True,
    help="Name or file of the witness's key (made with 'keys new').",
    shell_complete=complete_key_names,
)
@keystore_option
@password_option
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The witness's folder: what it signed, and any evidence.",
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="HOST:PORT the witness serves its checkpoints on.",
)
@click.option(
    "--every-blocks",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Cosign every block whose height is a multiple of N.",
)
@click.option(
    "--every-seconds",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Also cosign the tip when the last checkpoint is older than this.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="How often to ask the nodes for new blocks.",
)
@genesis_pin_options
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def witness_start(
    node_urls: tuple[str, ...],
    key_name: str,
    keystore_dir: Path | None,
    password_file: Path | None,
    home: Path,
    listen: str,
    every_blocks: int,
    every_seconds: float,
    poll_seconds: float,
    genesis_hash: str | None,
    genesis_file: Path | None,
    log_level: str,
) -> None:
    """Follow the chain of the given nodes, check every block as 'audit verify' does, and
    cosign checkpoints (chain id, height, block hash, state root); serve them on
    GET /checkpoints/latest, /checkpoints/{height} and /status. If the key is a member
    with the role witness, also submit each checkpoint to the chain. If the chain ever
    contradicts a cosigned checkpoint, stop signing and keep both blocks as evidence.

    Example: danangchain witness start --node http://10.0.0.5:26657 --key uni --home ./w
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sources = check_node_urls(node_urls)
    host, port = parse_listen(listen)
    pinned = read_pinned_hash(genesis_hash, genesis_file)
    key = load_signing_key(keystore_dir, key_name, password_file)
    # The witness's server and follower: loaded only by the command that runs one.
    from node.witness.feed import make_node_feed
    from node.witness.follower import SigningPolicy, Witness
    from node.witness.journal import JournalError, open_journal
    from node.witness.server import run_witness_until_signalled

    created = not home.exists()
    try:
        journal = open_journal(home)
    except JournalError as exc:
        raise CliError(str(exc)) from None
    try:
        try:
            genesis = find_genesis(journal, sources[0], pinned, key)
            journal.bind(genesis, key.public_key)
        except (CliError, JournalError):
            if created:  # a first start that fails leaves no half-made home behind
                journal.close()
                shutil.rmtree(home, ignore_errors=True)
            raise
        policy = SigningPolicy(every_blocks, every_seconds)
        submitter = make_submitter(sources[0], key)
        feed = make_node_feed(key, genesis.chain_id)
        witness_state = Witness(key, genesis, journal, sources, policy, feed, submitter)
        if witness_state.halted:
            log.critical("WITNESS HALTED by an earlier run: see %s/evidence.json", home)
        run_witness_until_signalled(witness_state, host, port, poll_seconds)
    except JournalError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot start the witness on {listen}: {exc.strerror or exc}") from None
    finally:
        journal.close()


def find_genesis(
    journal: WitnessJournal, node_url: str, pinned: bytes | None, key: ed25519.SigningKey
) -> Genesis:
    """Return the genesis the home follows, or on first start the node's; check the pin."""
    from node.witness.feed import FeedError

    genesis = journal.read_genesis()
    if genesis is None:
        try:
            genesis = fetch_genesis(node_url, key)
        except FeedError as exc:
            raise CliError(str(exc)) from None
    if pinned is not None and genesis.hash != pinned:
        raise CliError(
            _("the chain's genesis {found} is not the pinned {pinned}").format(
                found=genesis.hash.hex(), pinned=pinned.hex()
            )
        )
    return genesis


def fetch_genesis(node_url: str, key: ed25519.SigningKey) -> Genesis:
    """Read the genesis a node's export stream opens with (first start of a witness)."""
    from node.witness.feed import open_node_feed

    status = NodeClient(node_url).get("/status")
    height, chain_id = int(status["height"]), str(status["chain_id"])
    try:
        with open_node_feed(node_url, height + 1, key, chain_id) as reader:
            return reader.header.genesis
    except DecodeError as exc:
        raise CliError(f"{node_url}: the export stream is malformed: {exc}") from None


def make_submitter(node_url: str, key: ed25519.SigningKey) -> Callable[[Cosignature], str]:
    """Return what hands a cosignature to the chain, if the key's member is a witness."""
    client = NodeClient(node_url, timeout_s=10)

    def submit_cosignature(cosignature: Cosignature) -> str:
        signer = client.get(f"/keys/{key.public_key.hex()}")
        if not signer.get("member"):
            return "not submitted: the key is not a member (a registrar admits it --role witness)"
        if signer.get("role") != ROLE_WITNESS or signer.get("revoked"):
            return f"not submitted: the key's member has the role {signer.get('role')}, not witness"
        result = submit(client, key, make_checkpoint_body(cosignature), wait=False)
        return f"submitted as transaction {result['tx_id']} ({result['status']})"

    return submit_cosignature
