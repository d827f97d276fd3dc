"""`danangchain bench --sweep`: offered rate → committed, p50, p99, one fresh network per
step, and the highest rate whose p99 holds the target; `--plot FILE.png` draws it.

The rates are fractions of this machine's bound (cores × the node verifier's rate ÷
validators, measured before the first step), so a sweep means the same on any machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cli.bench_stats import find_highest_holding
from cli.common import CliError
from cli.i18n import _

SWEEP_FRACTIONS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
P99_TARGET_S = 1.5
FAILURES_BEFORE_STOP = 2  # steps in a row over the target before the sweep stops


def parse_fractions(text: str | None) -> tuple[float, ...]:
    """Return the sweep's fractions of the bound: the default, or a comma-separated list."""
    if text is None:
        return SWEEP_FRACTIONS
    try:
        fractions = tuple(float(part) for part in text.split(","))
    except ValueError:
        fractions = ()
    if not fractions or any(not 0 < f <= 2 for f in fractions):
        raise CliError(
            _(
                "--sweep-fractions takes fractions of the bound, above 0 and at most 2: {text}"
            ).format(text=repr(text))
        )
    return tuple(sorted(set(fractions)))


def run_sweep(
    validators: int,
    txs: int,
    senders: int,
    lanes: int,
    max_batch: int,
    fractions: Sequence[float],
    verify_workers: int | None = None,
    target_s: float = P99_TARGET_S,
) -> dict[str, Any]:
    """Run one bench per offered rate; return the rows and the highest rate that held."""
    from cli.bench_run import CHAIN_ID, measure_raw_verify_rate, run_bench
    from cli.localnet import temporary_network
    from node.chain import signatures as node_signatures

    cores = os.cpu_count() or 1
    raw = measure_raw_verify_rate(is_valid=node_signatures.is_valid_signature)
    bound = cores * raw / validators
    rows: list[dict[str, Any]] = []
    failures = 0
    for fraction in fractions:
        rate = round(fraction * bound, 1)
        with temporary_network(
            "danangchain-sweep-", validators, CHAIN_ID, verify_workers=verify_workers
        ) as network:
            figures = run_bench(
                network, validators, txs, senders, lanes, max_batch, rate, False, False
            )
        row = {
            "offered_fraction": fraction,
            "offered_rate": rate,
            "committed_tps": figures["committed_tps"],
            "committed_share": round(figures["committed_tps"] / rate, 3),
            "latency_p50_s": figures["latency_p50_s"],
            "latency_p99_s": figures["latency_p99_s"],
            "node_cpu_ms_per_tx": figures["node_cpu_ms_per_tx"],
            "peak_memory_mb_per_node": figures["peak_memory_mb_per_node"],
        }
        row["holds"] = row["latency_p99_s"] <= target_s and row["committed_share"] >= 0.95
        rows.append(row)
        failures = 0 if row["holds"] else failures + 1
        if failures >= FAILURES_BEFORE_STOP:
            break
    best = find_highest_holding(rows)
    return {
        "validators": validators,
        "cores": cores,
        "raw_verify_per_s": round(raw, 1),
        "bound_tps": round(bound, 1),
        "p99_target_s": target_s,
        "sweep": rows,
        "highest_holding_rate": None if best is None else best["offered_rate"],
        "highest_holding_fraction": None if best is None else best["offered_fraction"],
    }


def describe_sweep(result: dict[str, Any]) -> list[str]:
    """Return the sweep as a table for people."""
    lines = [
        _("bound {bound} tx/s ({cores} cores × {raw} verifications/s ÷ {validators})").format(
            bound=result["bound_tps"],
            cores=result["cores"],
            raw=result["raw_verify_per_s"],
            validators=result["validators"],
        ),
        f"{'offered':>9} {'× bound':>8} {'committed':>10} {'p50 s':>7} {'p99 s':>7}  ok",
    ]
    for row in result["sweep"]:
        lines.append(
            f"{row['offered_rate']:>9.1f} {row['offered_fraction']:>8.2f} "
            f"{row['committed_tps']:>10.1f} {row['latency_p50_s']:>7.3f} "
            f"{row['latency_p99_s']:>7.3f}  {'yes' if row['holds'] else 'no'}"
        )
    if result["highest_holding_rate"] is None:
        lines.append(
            _("no offered rate held p99 ≤ {target} s").format(target=result["p99_target_s"])
        )
    else:
        lines.append(
            _("highest rate holding p99 ≤ {target} s: {rate} tx/s ({fraction} × the bound)").format(
                target=result["p99_target_s"],
                rate=result["highest_holding_rate"],
                fraction=result["highest_holding_fraction"],
            )
        )
    return lines


def plot_sweep(result: dict[str, Any], path: Path) -> None:
    """Draw committed throughput and p50/p99 latency against the offered rate (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: write the file only
    import matplotlib.pyplot as plt

    rows = result["sweep"]
    offered = [row["offered_rate"] for row in rows]
    figure, throughput = plt.subplots(figsize=(8, 4.5), dpi=120)
    throughput.plot(offered, [r["committed_tps"] for r in rows], "o-", label="committed tx/s")
    throughput.plot(offered, offered, ":", color="grey", label="offered = committed")
    throughput.set_xlabel("offered rate (tx/s)")
    throughput.set_ylabel("committed (tx/s)")
    latency = throughput.twinx()
    latency.plot(offered, [r["latency_p50_s"] for r in rows], "s--", color="tab:green", label="p50")
    latency.plot(offered, [r["latency_p99_s"] for r in rows], "^--", color="tab:red", label="p99")
    latency.axhline(result["p99_target_s"], color="tab:red", linewidth=0.8, alpha=0.5)
    latency.set_ylabel("submission to commit (s)")
    handles = throughput.get_legend_handles_labels()
    more = latency.get_legend_handles_labels()
    throughput.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
    throughput.set_title(
        f"danangchain bench --sweep: {result['validators']} validators, {result['cores']} cores,"
        f" bound {result['bound_tps']:.0f} tx/s"
    )
    figure.tight_layout()
    try:
        figure.savefig(path)
    except OSError as exc:
        raise CliError(
            _("cannot write {path}: {reason}").format(path=path, reason=exc.strerror)
        ) from None
    finally:
        plt.close(figure)
