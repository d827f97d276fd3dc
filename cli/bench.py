"""`danangchain bench`: the command; the benchmark itself is in cli/bench_run.py."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import CliError, emit, json_option
from cli.i18n import TranslatedCommand, _


@click.command(cls=TranslatedCommand)
@click.option(
    "--validators",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Validators in the local network, each its own process.",
)
@click.option(
    "--txs",
    type=click.IntRange(100, 1_000_000),
    default=20_000,
    show_default=True,
    help="Record transactions to submit.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Open loop: submit this many transactions per second on a fixed schedule "
    "(latency counts from each one's scheduled time). Default: as fast as admitted.",
)
@click.option(
    "--senders",
    type=click.IntRange(1, 5000),
    default=200,
    show_default=True,
    help="Distinct signing members.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Lanes: batches in flight at once (each lane owns some senders and one node).",
)
@click.option(
    "--batch",
    "max_batch",
    type=click.IntRange(1, 256),
    default=200,
    show_default=True,
    help="Most transactions in one POST /txs/batch.",
)
@click.option(
    "--verify-only",
    is_flag=True,
    help="Also time 'audit verify --home' of one stopped node on the chain made.",
)
@click.option(
    "--sync-only",
    is_flag=True,
    help="Also time how fast an extra, empty full node catches up with the chain made.",
)
@click.option(
    "--sealed",
    is_flag=True,
    help="Submit sealed records (amount and memo encrypted, as 'tx record' makes them) "
    "instead of plain ones.",
)
@click.option(
    "--sweep",
    is_flag=True,
    help="Run one bench per offered rate (fractions of the bound, one fresh network each) and "
    "print offered rate, committed, p50 and p99, and the highest rate whose p99 holds 1.5 s.",
)
@click.option(
    "--sweep-fractions",
    default=None,
    help="The sweep's rates as fractions of the bound, comma-separated "
    "(default: 0.1,0.15,...,0.5).",
)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --sweep: draw committed throughput and latency against the offered rate "
    "to this PNG file.",
)
@click.option(
    "--verify-workers",
    "verify_workers",
    default=None,
    help="Each node's signature worker processes ([node] verify_workers): auto, or a "
    "number (0: every check in the node's own process). Default: as 'network init' "
    "makes them, 0 when several nodes share this machine, else auto.",
)
@json_option
def bench(
    validators: int,
    txs: int,
    rate: float | None,
    senders: int,
    concurrency: int,
    max_batch: int,
    verify_only: bool,
    sync_only: bool,
    sealed: bool,
    sweep: bool,
    sweep_fractions: str | None,
    plot_file: Path | None,
    verify_workers: str | None,
    as_json: bool,
) -> None:
    """Start a local network in a temporary folder, submit pre-signed transactions
    (at --rate, or as fast as the network admits them), and print committed throughput,
    submission-to-commit latency and this machine's Ed25519 verification bound.

    Example: danangchain bench --txs 20000 --rate 1000 --json
    """
    workers = parse_workers(verify_workers)
    if not sweep and (sweep_fractions is not None or plot_file is not None):
        raise CliError(_("--sweep-fractions and --plot go with --sweep"))
    if sweep:
        if rate is not None or verify_only or sync_only:
            raise CliError(
                _("--sweep chooses the rates itself: drop --rate, --verify-only, --sync-only")
            )
        from cli.bench_sweep import describe_sweep, parse_fractions, plot_sweep, run_sweep

        fractions = parse_fractions(sweep_fractions)
        result = run_sweep(
            validators, txs, min(senders, txs), concurrency, max_batch, fractions, workers
        )
        if plot_file is not None:
            plot_sweep(result, plot_file)
            result["plot"] = str(plot_file)
        emit(as_json, result, describe_sweep(result))
        return
    # The load generator, the node's verifier and aiohttp: loaded to run a bench only.
    from cli.bench_run import CHAIN_ID, run_bench
    from cli.localnet import temporary_network

    with temporary_network(
        "danangchain-bench-",
        validators,
        CHAIN_ID,
        full_nodes=1 if sync_only else 0,
        verify_workers=workers,
    ) as network:
        figures = run_bench(
            network,
            validators,
            txs,
            min(senders, txs),
            concurrency,
            max_batch,
            rate,
            verify_only,
            sync_only,
            sealed,
            sync_workers=workers,
        )
    emit(as_json, figures, [f"{name:<28} {value}" for name, value in figures.items()])


def parse_workers(text: str | None) -> int | None:
    """Return --verify-workers as a count, None to leave the homes as made; raise CliError."""
    if text is None:
        return None
    if text == "auto":
        from node.chain.verify_pool import auto_workers

        return auto_workers()
    from node.config import MAX_VERIFY_WORKERS

    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= MAX_VERIFY_WORKERS:
        raise CliError(
            _("--verify-workers must be auto or a number from 0 to {most}").format(
                most=MAX_VERIFY_WORKERS
            )
        )
    return int(text)
