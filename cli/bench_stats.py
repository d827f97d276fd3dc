"""The bench's pure parts: the load schedule, lanes, and the figures drawn from timings.

No clock, no I/O: the load generator (cli/bench_load.py) hands in what it observed.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WARM_UP_FRACTION = 0.1


@dataclass
class LoadLog:
    """What one load run observed: per transaction index its send time and commit time."""

    # The time each transaction counts from: its scheduled send time in open loop,
    # the moment its batch left in closed loop.
    sent_at: list[float | None]
    # When the batch actually left (the same as sent_at in closed loop).
    left_at: list[float | None]
    committed_at: list[float | None]
    refused: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    # (time seen, transactions) of every block seen while the load ran, in height order.
    blocks: list[tuple[float, int]] = field(default_factory=list)

    @classmethod
    def empty(cls, count: int) -> LoadLog:
        """Return a log for `count` transactions, nothing sent yet."""
        return cls([None] * count, [None] * count, [None] * count)


def compute_schedule(count: int, rate: float | None) -> list[float]:
    """Return each transaction's send offset in seconds: i / rate, or all 0 without a rate."""
    if rate is None:
        return [0.0] * count
    return [index / rate for index in range(count)]


def assign_lanes(count: int, senders: int, lanes: int) -> list[list[int]]:
    """Split transaction indexes into lanes so that all of one sender's go to one lane,
    in order (transaction i is signed by sender i mod senders)."""
    result: list[list[int]] = [[] for _ in range(lanes)]
    for index in range(count):
        result[(index % senders) % lanes].append(index)
    return result


def take_due(offsets: Sequence[float], start: int, elapsed: float, max_batch: int) -> int:
    """Return the end of the next batch: the transactions from `start` due by `elapsed`,
    at most `max_batch` of them."""
    due = bisect.bisect_right(offsets, elapsed, lo=start)
    return min(due, start + max_batch)


def compute_quantile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the value below which `fraction` of the sorted values fall (nearest rank)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarise_load(log: LoadLog, started: float) -> dict[str, Any]:
    """Turn a load log into throughput and latency figures (warm-up excluded)."""
    measured = [
        (sent, committed)
        for sent, committed in zip(log.sent_at, log.committed_at, strict=True)
        if sent is not None and committed is not None
    ]
    if len(measured) < 10:
        raise ValueError(f"only {len(measured)} transactions committed; nothing to measure")
    # Warm-up: throughput counts from the commit of the first 10 % of the transactions;
    # latency leaves out the first 10 % in the order they were scheduled.
    skip = int(len(measured) * WARM_UP_FRACTION)
    commit_times = sorted(committed for _, committed in measured)
    # Count what was committed after the block that ends the warm-up, over the time since.
    mark = commit_times[skip]
    counted = len(commit_times) - bisect.bisect_right(commit_times, mark)
    window = commit_times[-1] - mark
    if window <= 0:  # everything in one block: count from the start of the load
        counted, window = len(commit_times), commit_times[-1] - started
    latencies = sorted(committed - sent for sent, committed in measured[skip:])
    lags = sorted(
        left - sent
        for sent, left in zip(log.sent_at, log.left_at, strict=True)
        if sent is not None and left is not None
    )
    busy = [size for _, size in log.blocks if size]
    duration = commit_times[-1] - started
    return {
        "transactions_submitted": sum(1 for sent in log.sent_at if sent is not None),
        "transactions_committed": len(measured),
        "transactions_refused": log.refused,
        "committed_tps": round(counted / window, 1),
        "latency_p50_s": round(compute_quantile(latencies, 0.50), 4),
        "latency_p95_s": round(compute_quantile(latencies, 0.95), 4),
        "latency_p99_s": round(compute_quantile(latencies, 0.99), 4),
        "latency_max_s": round(latencies[-1], 4),
        "send_lag_p99_s": round(compute_quantile(lags, 0.99), 4),
        "blocks": len(busy),
        "blocks_per_s": round(len(busy) / duration, 2),
        "txs_per_block": round(statistics.mean(busy), 1) if busy else 0,
        "duration_s": round(duration, 3),
    }


def compute_bound_ratio(
    committed_tps: float, cores: int, raw_rate: float, validators: int
) -> float:
    """Return committed throughput over the bound cores × raw rate ÷ validators."""
    return committed_tps / (cores * raw_rate / validators)


def find_highest_holding(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the sweep row with the highest offered rate that held its target (p99 and
    the share committed), or None if none did."""
    holding = [row for row in rows if row["holds"]]
    return max(holding, key=lambda row: row["offered_rate"], default=None)
