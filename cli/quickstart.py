"""`danangchain quickstart`: a whole ledger story in a temporary folder, start to finish."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import click

from cli.client import NodeClient, ReadSigner
from cli.common import EXIT_REFUSED, CliError, emit, json_option
from cli.i18n import TranslatedCommand
from cli.localnet import TemporaryNetwork, stop_node_process, temporary_network
from cli.testnet import start_all
from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.transaction import Body, EndorseBody, MemberAdmitBody, RecordBody
from node.keyfile import generate_signing_key, read_keystore, save_key, unlock_key

STEP_TIMEOUT_S = 30.0


def _run_step(
    client: NodeClient, key: ed25519.SigningKey, body: Body, label: str, steps: list[dict[str, Any]]
) -> dict[str, Any]:
    """Submit one transaction, wait for its commit and note how long it took."""
    from cli.submit import submit

    started = time.monotonic()
    result = submit(client, key, body, wait=True, timeout_s=STEP_TIMEOUT_S)
    if result["status"] != "committed":
        raise CliError(f"{label} was not committed: {result.get('reason')}", EXIT_REFUSED)
    result["label"] = label
    result["seconds"] = round(time.monotonic() - started, 3)
    steps.append(result)
    return result


def run_story(network: TemporaryNetwork, keep_running: bool, validators: int) -> dict[str, Any]:
    """Start a network's nodes, admit two members, record and endorse an invoice."""
    started = time.monotonic()
    made, password = network.made, network.password
    processes = start_all(network.homes, network.password_file, announce=False, detach=keep_running)
    try:
        # Each step goes to another node: any node accepts, all of them agree.
        clients = [NodeClient(url) for url, _ in processes]
        keystore = Path(made["keystore"])
        registrar = unlock_key(read_keystore(keystore / "registrar.json"), password)
        household, business = generate_signing_key(), generate_signing_key()
        save_key(keystore / "household.json", "household", household, password)
        save_key(keystore / "business.json", "business", business, password)
        steps: list[dict[str, Any]] = []
        for number, (key, role) in enumerate(((household, "household"), (business, "business"))):
            _run_step(
                clients[number % len(clients)],
                registrar,
                MemberAdmitBody(compute_address(key.public_key), role),
                f"admit the {role}",
                steps,
            )
        invoice = b"Invoice 2026-0001: 12 sacks of rice, 1,500,000 VND"
        record = _run_step(
            clients[2 % len(clients)],
            business,
            RecordBody(
                category="invoice",
                doc_hash=hashlib.sha256(invoice).digest(),
                amount=1_500_000,
                counterparty=compute_address(household.public_key),
                memo="quickstart invoice",
            ),
            "business records an invoice to the household",
            steps,
        )
        _run_step(
            clients[3 % len(clients)],
            household,
            EndorseBody(bytes.fromhex(record["tx_id"])),
            "household endorses the invoice",
            steps,
        )
        # The household reads its own record: a member's data is read signed.
        reading = NodeClient(processes[0][0], signer=ReadSigner(household))
        endorsed = reading.get(f"/records/{record['tx_id']}")
        agreed = wait_for_agreement(clients, steps[-1]["height"])
    finally:
        if not keep_running:
            for _, process in processes:
                stop_node_process(process)
    return {
        "chain_id": made["chain_id"],
        "validators": validators,
        "height": steps[-1]["height"],
        "latest_block_hash": agreed,
        "api_urls": [url for url, _ in processes],
        "household": encode_address(compute_address(household.public_key)),
        "business": encode_address(compute_address(business.public_key)),
        "record_id": record["tx_id"],
        "endorsed": endorsed["endorsed"],
        "steps": steps,
        "seconds": round(time.monotonic() - started, 3),
        "node_pids": [p.pid for _, p in processes] if keep_running else None,
        "keystore": made["keystore"],
    }


def wait_for_agreement(clients: list[NodeClient], height: int) -> str:
    """Wait until every node has the block at `height`; return its hash, the same on all."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    hashes: set[str] = set()
    while time.monotonic() < deadline:
        try:
            hashes = {c.get(f"/blocks/{height}")["hash"] for c in clients}
        except CliError:
            time.sleep(0.1)
            continue
        if len(hashes) == 1:
            return hashes.pop()
        raise CliError(f"nodes disagree at height {height}: {sorted(hashes)}", EXIT_REFUSED)
    raise CliError(f"not every node reached height {height} in time", EXIT_REFUSED)


def summarise(story: dict[str, Any], keep_running: bool, password_file: Path) -> list[str]:
    """Return the readable summary of a quickstart run."""
    lines = [
        f"DanangChain quickstart on chain {story['chain_id']} "
        f"({story['validators']} validators, each its own process)",
        f"  household {story['household']}",
        f"  business  {story['business']}",
    ]
    for step in story["steps"]:
        lines.append(
            f"  {step['label']:<46} height {step['height']:>3}  "
            f"tx {step['tx_id'][:16]}…  {step['seconds']:.2f}s"
        )
    lines.append(f"record {story['record_id']} endorsed: {story['endorsed']}")
    lines.append(
        f"chain height {story['height']}, the same block on every node: "
        f"{story['latest_block_hash'][:16]}…"
    )
    lines.append(f"done in {story['seconds']:.2f}s")
    if keep_running:
        pids = " ".join(str(pid) for pid in story["node_pids"])
        lines += [
            f"nodes running at {', '.join(story['api_urls'])}",
            f"  stop them with: kill {pids}",
            f"  keys in {story['keystore']}, password in {password_file}",
            f"  try: danangchain query record {story['record_id']} --node {story['api_urls'][0]}",
        ]
    return lines


@click.command(cls=TranslatedCommand)
@click.option(
    "--keep-running", is_flag=True, help="Leave the nodes running afterwards and print their URLs."
)
@click.option(
    "--validators",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Validators in the local network.",
)
@json_option
def quickstart(keep_running: bool, validators: int, as_json: bool) -> None:
    """Run a local ledger network in a temporary folder: admit a household and a business,
    record an invoice, endorse it, and print what happened.

    Example: danangchain quickstart
    """
    with temporary_network(
        "danangchain-quickstart-", validators, "danangchain-quickstart", keep=keep_running
    ) as network:
        story = run_story(network, keep_running, validators)
        emit(as_json, story, summarise(story, keep_running, network.password_file))
