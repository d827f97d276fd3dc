"""End to end: schemathesis fuzzes a real node's API against its own OpenAPI document.

Random ids are almost never known to the ledger, so the id routes would only ever answer
404. The test first commits real transactions and hands their ids to schemathesis as
dictionaries bound to the path parameters (schemathesis.toml `[dictionaries]` and
`[parameters]`), so about half the generated valid ids are ones the node knows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from node.keyfile import generate_signing_key, save_key
from tests.e2e.conftest import PASSWORD, LocalNode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)
# Where tests/e2e/schemathesis_hooks.py logs each request (not imported here: importing it
# would register its hooks in this process too).
LOG_VARIABLE = "DANANGCHAIN_SCHEMATHESIS_LOG"
# How often a valid generated path parameter is replaced by a known id.
KNOWN_ID_PROBABILITY = 0.5
# The id routes that must have answered 200 for a known id at least once.
ID_ROUTES = {
    "/txs/{tx_id}": "tx_id",
    "/proofs/tx/{tx_id}": "tx_id",
    "/records/{record_id}": "record_id",
    "/accounts/{address}": "address",
    "/encryption-keys/{address}": "address",
    "/blocks/{height}": "height",
    "/keys/{public_key}": "public_key",
}


def admit_member(node: LocalNode, name: str, role: str) -> dict[str, Any]:
    """Create a key in the node's keystore (cheap KDF) and admit it; return the outcome."""
    key = generate_signing_key()
    saved = save_key(node.keystore / f"{name}.json", name, key, PASSWORD, kdf_n=2**10)
    address = encode_address(compute_address(key.public_key))
    assert saved.encryption_public_key is not None
    result = node.cli(
        "member", "admit", address, "--role", role, "--from", "registrar", "--wait", "--json",
        "--encryption-key", saved.encryption_public_key.hex(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    assert outcome["status"] == "committed", outcome
    return {**outcome, "address": address, "public_key": key.public_key.hex()}


def commit_known_ids(node: LocalNode) -> dict[str, list[str]]:
    """Commit two admissions and a record; return the ids they made, per path parameter."""
    household = admit_member(node, "household", "household")
    business = admit_member(node, "business", "business")
    result = node.cli(
        "tx", "record", "--from", "business", "--category", "invoice",
        "--doc-hash", "ab" * 32, "--amount", "1500000", "--counterparty", household["address"],
        "--memo", "rice", "--wait", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record: dict[str, Any] = json.loads(result.stdout)
    assert record["status"] == "committed", record
    made = (household, business, record)
    return {
        "tx_id": [str(outcome["tx_id"]) for outcome in made],
        "record_id": [str(record["tx_id"])],
        "address": [str(household["address"]), str(business["address"])],
        "height": sorted({str(outcome["height"]) for outcome in made}),
        "public_key": [str(household["public_key"]), str(business["public_key"])],
    }


def write_config(path: Path, known: dict[str, list[str]]) -> None:
    """Write a schemathesis.toml binding each id path parameter to its known values."""
    lines = []
    for parameter, values in known.items():
        lines += [f"[dictionaries.{parameter}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for parameter in known:
        lines.append(
            f'"path.{parameter}" = {{ dictionary = "{parameter}", '
            f"probability = {KNOWN_ID_PROBABILITY} }}"
        )
    path.write_text("\n".join(lines) + "\n")


def logged_requests(log_path: Path) -> list[dict[str, Any]]:
    """Return the requests the hooks logged, one dict each."""
    return [json.loads(line) for line in log_path.read_text().splitlines()]


def known_id_statuses(
    requests: list[dict[str, Any]], known: dict[str, list[str]]
) -> dict[str, Counter[int]]:
    """Count the statuses of GETs on the id routes whose parameter was a known id."""
    statuses: dict[str, Counter[int]] = {route: Counter() for route in ID_ROUTES}
    for request in requests:
        parameter = ID_ROUTES.get(request["path"])
        if request["method"] != "GET" or parameter is None:
            continue
        if request["query"] and request["status"] == 400:
            continue  # a query parameter out of its documented range: 400 is its answer
        if request["path_parameters"].get(parameter) in known[parameter]:
            statuses[request["path"]][request["status"]] += 1
    return statuses


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    local_node: LocalNode, tmp_path: Path
) -> None:
    known = commit_known_ids(local_node)
    # Schemathesis reads as an auditor: every GET is signed (tests/e2e/schemathesis_hooks.py).
    auditor = ed25519.signing_key_from_seed(os.urandom(32))
    admitted = local_node.cli(
        "member", "admit", encode_address(compute_address(auditor.public_key)),
        "--role", "auditor", "--from", "registrar", "--wait",
    )  # fmt: skip
    assert admitted.returncode == 0, admitted.stderr
    reader = f"{local_node.made['chain_id']} {auditor.seed.hex()}"
    config = tmp_path / "schemathesis.toml"
    write_config(config, known)
    log_path = tmp_path / "requests.jsonl"
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
            "run", local_node.url + "/openapi.json",
            "--checks", CHECKS, "--max-examples", "25", "--workers", "1", "--seed", "7",
            "--request-timeout", "10",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,  # schemathesis keeps its cache in the working folder
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
            LOG_VARIABLE: str(log_path),
            "DANANGCHAIN_SCHEMATHESIS_READER": reader,
        },
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout

    requests = logged_requests(log_path)
    statuses = known_id_statuses(requests, known)
    summary = {route: dict(counts) for route, counts in statuses.items()}
    for route, counts in statuses.items():
        assert counts[200] >= 1, f"no known-id GET {route} answered 200: {summary}"
        assert set(counts) == {200}, f"a known id was not served by GET {route}: {summary}"
    # The msgpack serializer's bodies reach the batch route as msgpack, not as a form.
    batch = Counter(
        r["status"] for r in requests if r["path"] == "/txs/batch" and r["method"] == "POST"
    )
    assert batch[200] >= 1, f"no POST /txs/batch was answered 200: {dict(batch)}"
