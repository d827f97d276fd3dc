"""`danangchain quickstart`: a whole ledger story in a temporary folder, start to finish."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from cli.client import NodeClient
from cli.common import EXIT_REFUSED, CliError, emit, json_option
from cli.localnet import (
    find_free_port_pair,
    start_node_process,
    stop_node_process,
    wait_until_serving,
)
from cli.network import init_network
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


def run_story(
    folder: Path, password: str, password_file: Path, keep_running: bool
) -> dict[str, Any]:
    """Init a network, start its node, admit two members, record and endorse an invoice."""
    started = time.monotonic()
    made = init_network(
        folder / "net", 1, "danangchain-quickstart", find_free_port_pair(), password
    )
    node = made["nodes"][0]
    log_path = folder / "node.log"
    process = start_node_process(Path(node["home"]), password_file, log_path, detach=keep_running)
    try:
        wait_until_serving(process, node["api_url"], log_path)
        client = NodeClient(node["api_url"])
        keystore = Path(made["keystore"])
        registrar = unlock_key(read_keystore(keystore / "registrar.json"), password)
        household, business = generate_signing_key(), generate_signing_key()
        save_key(keystore / "household.json", "household", household, password)
        save_key(keystore / "business.json", "business", business, password)
        steps: list[dict[str, Any]] = []
        for key, role in ((household, "household"), (business, "business")):
            _run_step(
                client,
                registrar,
                MemberAdmitBody(compute_address(key.public_key), role),
                f"admit the {role}",
                steps,
            )
        invoice = b"Invoice 2026-0001: 12 sacks of rice, 1,500,000 VND"
        record = _run_step(
            client,
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
            client,
            household,
            EndorseBody(bytes.fromhex(record["tx_id"])),
            "household endorses the invoice",
            steps,
        )
        endorsed = client.get(f"/records/{record['tx_id']}")
        status = client.get("/status")
    finally:
        if not keep_running:
            stop_node_process(process)
    return {
        "chain_id": status["chain_id"],
        "height": status["height"],
        "latest_block_hash": status["latest_block_hash"],
        "api_url": node["api_url"],
        "household": encode_address(compute_address(household.public_key)),
        "business": encode_address(compute_address(business.public_key)),
        "record_id": record["tx_id"],
        "endorsed": endorsed["endorsed"],
        "steps": steps,
        "seconds": round(time.monotonic() - started, 3),
        "node_pid": process.pid if keep_running else None,
        "home": node["home"],
        "keystore": made["keystore"],
    }


def summarise(story: dict[str, Any], keep_running: bool, password_file: Path) -> list[str]:
    """Return the readable summary of a quickstart run."""
    lines = [
        f"DanangChain quickstart on chain {story['chain_id']}",
        f"  household {story['household']}",
        f"  business  {story['business']}",
    ]
    for step in story["steps"]:
        lines.append(
            f"  {step['label']:<46} height {step['height']:>3}  "
            f"tx {step['tx_id'][:16]}…  {step['seconds']:.2f}s"
        )
    lines.append(f"record {story['record_id']} endorsed: {story['endorsed']}")
    lines.append(f"chain height {story['height']}, latest block {story['latest_block_hash'][:16]}…")
    lines.append(f"done in {story['seconds']:.2f}s")
    if keep_running:
        lines += [
            f"node running at {story['api_url']} (pid {story['node_pid']}; "
            f"stop it with: kill {story['node_pid']})",
            f"  keys in {story['keystore']}, password in {password_file}",
            f"  try: danangchain query record {story['record_id']} --node {story['api_url']}",
        ]
    return lines


@click.command()
@click.option(
    "--keep-running", is_flag=True, help="Leave the node running afterwards and print its URL."
)
@json_option
def quickstart(keep_running: bool, as_json: bool) -> None:
    """Run a one-validator ledger in a temporary folder: admit a household and a business,
    record an invoice, endorse it, and print what happened.

    Example: danangchain quickstart
    """
    folder = Path(tempfile.mkdtemp(prefix="danangchain-quickstart-"))
    password = os.urandom(16).hex()
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    try:
        story = run_story(folder, password, password_file, keep_running)
        emit(as_json, story, summarise(story, keep_running, password_file))
    finally:
        if not keep_running:
            shutil.rmtree(folder, ignore_errors=True)
