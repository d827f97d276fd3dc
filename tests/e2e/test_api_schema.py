"""End to end: schemathesis fuzzes a real node's API against its own OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from danangchain.address import compute_address, encode_address
from node.keyfile import generate_signing_key
from tests.e2e.conftest import LocalNode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    local_node: LocalNode, tmp_path: Path
) -> None:
    # A committed block gives the block, transaction and proof routes something to serve.
    address = encode_address(compute_address(generate_signing_key().public_key))
    admitted = local_node.cli(
        "member", "admit", address, "--role", "household", "--from", "registrar", "--wait"
    )
    assert admitted.returncode == 0, admitted.stderr
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", local_node.url + "/openapi.json",
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
        },
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
