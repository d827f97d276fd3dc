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


def test_bench_sweep_finds_the_highest_rate_holding_the_target_and_plots_it(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    plot = tmp_path / "sweep.png"
    result = run_cli(
        "bench", "--validators", "1", "--txs", "200", "--senders", "20", "--sweep",
        "--sweep-fractions", "0.005,0.01", "--plot", str(plot), "--json", timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sweep = json.loads(result.stdout)
    assert [row["offered_fraction"] for row in sweep["sweep"]] == [0.005, 0.01]
    for row in sweep["sweep"]:
        assert row["committed_tps"] > 0 and row["latency_p99_s"] >= row["latency_p50_s"] > 0
    held = [row["offered_rate"] for row in sweep["sweep"] if row["holds"]]
    assert sweep["highest_holding_rate"] == (max(held) if held else None)
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_bench_refuses_plot_without_sweep() -> None:
    result = run_cli("bench", "--plot", "x.png")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --sweep-fractions and --plot go with --sweep"
