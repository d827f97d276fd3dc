"""The benchmark behind `danangchain bench`: what a local network commits, verifies, syncs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from cli.bench_load import (
    LoadPlan,
    get_height,
    make_sender_keys,
    presign_records,
    presign_sealed_records,
    run_load,
    sign_admissions,
)
from cli.bench_stats import compute_bound_ratio, summarise_load
from cli.client import NodeClient
from cli.common import CliError
from cli.localnet import (
    TemporaryNetwork,
    set_verify_workers,
    start_node_process,
    stop_node_process,
)
from cli.progress import progress
from cli.testnet import start_all
from danangchain import ed25519
from danangchain.sealing import derive_encryption_key, encryption_public_key
from node.chain import signatures as node_signatures
from node.chain.verify_pool import auto_workers, available_cores
from node.config import load_config
from node.keyfile import read_keystore, unlock_key

SEALED_MAX_BATCH = 80

__all__ = ["measure_raw_verify_rate", "presign_records", "run_bench"]

CHAIN_ID = "danangchain-bench"
Verifier = Callable[[bytes, bytes, bytes], bool]
SYNC_TIMEOUT_S = 600.0


def measure_raw_verify_rate(
    samples: int = 2000, is_valid: Verifier = ed25519.is_valid_signature
) -> float:
    """Return strict Ed25519 verifications per second on one core (keys already cached):
    by default the core's verifier, which `audit verify` runs."""
    key = ed25519.signing_key_from_seed(bytes(range(32)))
    messages = [i.to_bytes(8, "big") for i in range(samples)]
    signatures = [ed25519.sign(key, m) for m in messages]
    is_valid(key.public_key, messages[0], signatures[0])
    started = time.perf_counter()
    for message, signature in zip(messages, signatures, strict=True):
        is_valid(key.public_key, message, signature)
    return samples / (time.perf_counter() - started)


def _process_tree(pid: int) -> list[int]:
    """Return a process and its descendants (a node and its signature workers), Linux."""
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                waiting.extend(int(child) for child in task.read_text().split())
            except (OSError, ValueError):
                continue
    return found


def _cpu_seconds(pid: int, descendants: bool = True) -> float:
    """Return the CPU time (user and system) a process (and its descendants, the node's
    signature workers) has used so far (Linux), or 0."""
    total = 0.0
    for member in _process_tree(pid) if descendants else [pid]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _peak_memory_mb(pid: int) -> float | None:
    """Return the peak resident memory in MiB of a process plus its descendants' (Linux),
    or None."""
    total = None
    for member in _process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        for line in status:
            if line.startswith("VmHWM:"):
                total = (total or 0.0) + int(line.split()[1]) / 1024
    return None if total is None else round(total, 1)


def measure_sync(
    home: Path, url: str, password_file: Path, tip: int, chain_txs: int, workers: int
) -> dict[str, Any]:
    """Start an empty full node with `workers` signature workers and time how long it
    takes to reach the tip."""
    set_verify_workers(home, workers)
    launched = time.perf_counter()
    process = start_node_process(home, password_file, home / "node.log")
    try:
        serving, reached = asyncio.run(_wait_for_sync(url, tip, process))
    finally:
        stop_node_process(process)
    # A chain too short to time may be caught up before the node first answers: then
    # the time counts from the launch, start-up included.
    started = serving if reached > serving else launched
    seconds = reached - started
    return {
        "sync_blocks": tip,
        "sync_seconds": round(seconds, 3),
        "sync_startup_s": round(serving - launched, 3),
        "sync_includes_startup": started == launched,
        "sync_blocks_per_s": round(tip / seconds, 1),
        "sync_txs_per_s": round(chain_txs / seconds, 1),
        "sync_workers": workers,
    }


async def _wait_for_sync(
    url: str, tip: int, process: subprocess.Popen[bytes]
) -> tuple[float, float]:
    """Return when a node first answered and when it reached the tip."""
    serving: float | None = None
    deadline = time.perf_counter() + SYNC_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise CliError(f"the syncing node exited with code {process.returncode}")
            try:
                height = await get_height(session, url)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.02)
                continue
            now = time.perf_counter()
            serving = serving or now
            if height >= tip:
                return serving, now
            await asyncio.sleep(0.02)
    raise CliError(f"the new node did not reach height {tip} within {SYNC_TIMEOUT_S:g}s")


def measure_verify(home: Path, raw_core: float, raw_node: float) -> dict[str, Any]:
    """Time `danangchain audit verify --home` of a stopped node, in its own process: with
    a signature worker per core (the default), and with none (`--workers 1`)."""
    figures = _time_verify(home, raw_core, raw_node, None)
    alone = _time_verify(home, raw_core, raw_node, 1)
    figures.update(
        verify_workers=available_cores(),
        verify_txs_per_s_without_workers=alone["verify_txs_per_s"],
        verify_ratio_to_node_raw_times_cores=round(
            figures["verify_txs_per_s"] / (raw_node * (os.cpu_count() or 1)), 3
        ),
    )
    return figures


def _time_verify(
    home: Path, raw_core: float, raw_node: float, workers: int | None
) -> dict[str, Any]:
    command = [sys.executable, "-m", "cli.main", "audit", "verify", "--home", str(home), "--json"]
    if workers is not None:
        command += ["--workers", str(workers)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = {}
    if done.returncode != 0 or not report.get("valid"):
        raise CliError(f"audit verify failed: {done.stderr.strip() or done.stdout.strip()}", 1)
    seconds = max(float(report["seconds"]), 0.001)
    txs, blocks = int(report["transactions_checked"]), int(report["heights_checked"])
    return {
        "verify_seconds": seconds,
        "verify_blocks": blocks,
        "verify_transactions": txs,
        "verify_txs_per_s": round(txs / seconds, 1),
        "verify_blocks_per_s": round(blocks / seconds, 1),
        "verify_ratio_to_raw": round(txs / seconds / raw_core, 3),
        "verify_ratio_to_node_raw": round(txs / seconds / raw_node, 3),
    }


def run_bench(
    network: TemporaryNetwork,
    validators: int,
    txs: int,
    senders: int,
    lanes: int,
    max_batch: int,
    rate: float | None,
    verify_only: bool,
    sync_only: bool,
    sealed: bool = False,
    sync_workers: int | None = None,
) -> dict[str, Any]:
    """Load a network's validators and measure what was asked; return the figures. The
    node that catches up uses `sync_workers` signature workers (None: one per core,
    as a node alone on its machine does)."""
    made, password, password_file, homes = (
        network.made,
        network.password,
        network.password_file,
        network.homes,
    )
    registrar = unlock_key(read_keystore(Path(made["keystore"]) / "registrar.json"), password)
    keys = make_sender_keys(senders)
    if sealed:
        audit_key = encryption_public_key(derive_encryption_key(os.urandom(32)))
        admissions = sign_admissions(registrar, CHAIN_ID, keys, audit_key)
        records = presign_sealed_records(CHAIN_ID, keys, txs, audit_key)
        # A sealed record with its content is about 700 bytes: keep a batch under the
        # node's 64 KiB request limit.
        max_batch = min(max_batch, SEALED_MAX_BATCH)
    else:
        admissions = sign_admissions(registrar, CHAIN_ID, keys)
        records = presign_records(CHAIN_ID, keys, txs)
    processes = start_all(homes[:validators], password_file, announce=False)
    try:
        plan = LoadPlan([url for url, _ in processes], records, senders, lanes, rate, max_batch)
        cpu_before = sum(_cpu_seconds(process.pid) for _, process in processes)
        main_before = sum(_cpu_seconds(process.pid, False) for _, process in processes)
        client_before = time.process_time()
        with progress(txs, "committed") as on_commit:
            log, started = asyncio.run(run_load(plan, admissions, on_commit))
        cpu = sum(_cpu_seconds(process.pid) for _, process in processes) - cpu_before
        main = sum(_cpu_seconds(process.pid, False) for _, process in processes) - main_before
        client = time.process_time() - client_before
        try:
            figures = summarise_load(log, started)
        except ValueError as exc:
            raise CliError(str(exc), 1) from None
        figures["offered_rate"] = rate
        # All nodes' CPU time over the load, per transaction committed.
        committed = figures["transactions_committed"]
        figures["node_cpu_ms_per_tx"] = round(1000 * cpu / committed, 3)
        # Of which the nodes' signature workers; and the load generator's own (this process).
        figures["worker_cpu_ms_per_tx"] = round(1000 * (cpu - main) / committed, 3)
        figures["client_cpu_ms_per_tx"] = round(1000 * client / committed, 3)
        if log.refusals:
            figures["refusals"] = log.refusals
        configured = load_config(homes[0]).verify_workers
        figures["verify_workers_per_node"] = auto_workers() if configured is None else configured
        memory = [_peak_memory_mb(process.pid) for _, process in processes]
        figures["peak_memory_mb_per_node"] = max((m for m in memory if m), default=None)
        if sync_only:
            tip = int(NodeClient(plan.urls[0]).get("/status")["height"])
            chain_txs = senders + figures["transactions_committed"]
            url = made["nodes"][-1]["api_url"]
            workers = auto_workers() if sync_workers is None else sync_workers
            figures.update(measure_sync(homes[-1], url, password_file, tip, chain_txs, workers))
    finally:
        for _, process in processes:
            stop_node_process(process)
    # Measured with the nodes stopped: the node's verifier bounds the network, the core's
    # is what `audit verify` runs.
    raw = measure_raw_verify_rate(is_valid=node_signatures.is_valid_signature)
    raw_core = measure_raw_verify_rate()
    if verify_only:
        figures.update(measure_verify(homes[0], raw_core, raw))
    cores = os.cpu_count() or 1
    figures.update(
        validators=validators,
        cores=cores,
        raw_verify_per_s=round(raw, 1),
        raw_verify_per_s_core=round(raw_core, 1),
        bound_ratio=round(compute_bound_ratio(figures["committed_tps"], cores, raw, validators), 3),
    )
    if rate is not None:
        # The offered rate as a fraction of the same bound (committed / bound is bound_ratio).
        figures["offered_fraction_of_bound"] = round(
            compute_bound_ratio(rate, cores, raw, validators), 3
        )
    return figures
