"""The bench's pure parts: schedule, lanes, batching and the figures drawn from timings."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

from cli.bench_stats import (
    LoadLog,
    assign_lanes,
    compute_bound_ratio,
    compute_quantile,
    compute_schedule,
    summarise_load,
    take_due,
)
from cli.main import cli as root


def test_schedule_is_evenly_spaced_at_the_rate() -> None:
    assert compute_schedule(4, 2.0) == [0.0, 0.5, 1.0, 1.5]


def test_schedule_without_rate_sends_everything_at_once() -> None:
    assert compute_schedule(3, None) == [0.0, 0.0, 0.0]


def test_lanes_keep_each_senders_transactions_together_and_in_order() -> None:
    lanes = assign_lanes(count=12, senders=4, lanes=2)
    assert lanes == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 11]]
    for lane in assign_lanes(count=50, senders=7, lanes=3):
        assert lane == sorted(lane)
        assert len({index % 7 % 3 for index in lane}) <= 1


def test_take_due_stops_at_the_clock_and_at_the_batch_limit() -> None:
    offsets = [0.0, 0.1, 0.2, 0.3, 0.4]
    assert take_due(offsets, 0, 0.25, 10) == 3
    assert take_due(offsets, 3, 0.25, 10) == 3  # nothing more is due yet
    assert take_due(offsets, 0, 1.0, 2) == 2
    assert take_due(offsets, 1, 0.1, 10) == 2  # due exactly now counts


def test_quantile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert compute_quantile(values, 0.5) == 50.0
    assert compute_quantile(values, 0.99) == 99.0
    assert compute_quantile(values, 1.0) == 100.0
    assert math.isnan(compute_quantile([], 0.5))


def make_log(sent: list[float], committed: list[float | None]) -> LoadLog:
    log = LoadLog.empty(len(sent))
    log.sent_at = list(sent)
    log.left_at = list(sent)
    log.committed_at = list(committed)
    return log


def test_throughput_counts_after_the_warm_up_block() -> None:
    # 100 transactions sent at t = i/100, committed in blocks of 10 every 0.1 s.
    sent = [i / 100 for i in range(100)]
    committed: list[float | None] = [0.1 * (i // 10 + 1) for i in range(100)]
    log = make_log(sent, committed)
    log.blocks = [(0.1 * (b + 1), 10) for b in range(10)]
    figures = summarise_load(log, started=0.0)
    # Warm-up ends with the second block (t = 0.2); 80 commits follow over 0.8 s.
    assert figures["committed_tps"] == pytest.approx(100.0)
    assert figures["transactions_committed"] == 100
    assert figures["blocks"] == 10
    assert figures["txs_per_block"] == 10
    assert 0 < figures["latency_p50_s"] <= figures["latency_p99_s"] <= 0.1


def test_latency_counts_from_the_scheduled_time_and_skips_the_uncommitted() -> None:
    sent = [0.0] * 20
    committed: list[float | None] = [1.0] * 19 + [None]
    log = make_log(sent, committed)
    log.left_at = [0.5] * 20  # the batch left late: that delay is part of the latency
    figures = summarise_load(log, started=0.0)
    assert figures["latency_p50_s"] == 1.0
    assert figures["send_lag_p99_s"] == 0.5
    assert figures["transactions_committed"] == 19
    # One block holds everything: throughput counts from the start of the load.
    assert figures["committed_tps"] == 19.0


def test_summary_refuses_too_few_commits() -> None:
    with pytest.raises(ValueError, match="nothing to measure"):
        summarise_load(make_log([0.0] * 5, [1.0] * 5), started=0.0)


def test_bound_ratio_divides_by_cores_times_rate_over_validators() -> None:
    assert compute_bound_ratio(1000.0, cores=2, raw_rate=8000.0, validators=4) == 0.25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--txs", "5"], "--txs"),
        (["--rate", "0"], "--rate"),
        (["--batch", "1000"], "--batch"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(root, ["bench", *args], prog_name="danangchain")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr


def test_the_highest_holding_rate_is_the_highest_row_that_held() -> None:
    from cli.bench_stats import find_highest_holding

    rows = [
        {"offered_rate": 100.0, "holds": True},
        {"offered_rate": 300.0, "holds": False},
        {"offered_rate": 200.0, "holds": True},
    ]
    assert find_highest_holding(rows) == rows[2]
    assert find_highest_holding([{"offered_rate": 1.0, "holds": False}]) is None


def test_sweep_fractions_are_parsed_sorted_and_bounded() -> None:
    import pytest

    from cli.bench_sweep import SWEEP_FRACTIONS, parse_fractions
    from cli.common import CliError

    assert parse_fractions(None) == SWEEP_FRACTIONS
    assert parse_fractions("0.3,0.1,0.3") == (0.1, 0.3)
    for bad in ("", "0", "-0.1", "3", "a,b", "0.1,,0.2"):
        with pytest.raises(CliError):
            parse_fractions(bad)


def test_a_sweep_is_drawn_to_a_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cli.bench_sweep import plot_sweep

    rows = [
        {"offered_rate": r, "committed_tps": r * 0.99, "latency_p50_s": 0.1 * i,
         "latency_p99_s": 0.3 * i, "holds": i < 3, "offered_fraction": 0.1 * i}
        for i, r in enumerate((500.0, 1000.0, 1500.0, 2000.0), start=1)
    ]  # fmt: skip
    result = {"sweep": rows, "validators": 4, "cores": 2, "bound_tps": 8000.0, "p99_target_s": 1.5}
    out = tmp_path / "sweep.png"
    plot_sweep(result, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
