"""End to end: `danangchain bench` on a one-validator network, as an operator runs it."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_bench_reports_throughput_latency_and_verification() -> None:
    result = run_cli(
        "bench", "--validators", "1", "--txs", "300", "--verify-only", "--json", timeout=240
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for name in (
        "committed_tps",
        "latency_p50_s",
        "latency_p99_s",
        "raw_verify_per_s",
        "bound_ratio",
        "blocks_per_s",
        "txs_per_block",
        "peak_memory_mb_per_node",
        "verify_txs_per_s",
        "verify_blocks_per_s",
        "verify_ratio_to_raw",
    ):
        assert figures[name] > 0, name
    assert figures["transactions_committed"] == 300
    # The 200 senders' admissions, then the 300 records.
    assert figures["verify_transactions"] == 500
