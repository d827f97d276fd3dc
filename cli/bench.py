"""`danangchain bench`: measure what a local network commits, on this machine."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import click

from cli.common import CliError, emit, json_option
from cli.localnet import find_free_ports, stop_node_process
from cli.network import init_network
from cli.testnet import start_all
from danangchain import ed25519
from danangchain.address import compute_address
from danangchain.transaction import (
    MemberAdmitBody,
    RecordBody,
    compute_tx_id,
    encode_transaction,
    sign_transaction,
)
from node.keyfile import read_keystore, unlock_key

WARM_UP_FRACTION = 0.1


def measure_raw_verify_rate(samples: int = 2000) -> float:
    """Return strict Ed25519 verifications per second on one core (keys already cached)."""
    key = ed25519.signing_key_from_seed(bytes(range(32)))
    messages = [i.to_bytes(8, "big") for i in range(samples)]
    signatures = [ed25519.sign(key, m) for m in messages]
    ed25519.is_valid_signature(key.public_key, messages[0], signatures[0])
    started = time.perf_counter()
    for message, signature in zip(messages, signatures, strict=True):
        ed25519.is_valid_signature(key.public_key, message, signature)
    return samples / (time.perf_counter() - started)


def presign_records(chain_id: str, senders: list[ed25519.SigningKey], count: int) -> list[bytes]:
    """Sign `count` record transactions round-robin across senders, nonces from 1."""
    nonces = [0] * len(senders)
    encoded = []
    for number in range(count):
        index = number % len(senders)
        nonces[index] += 1
        body = RecordBody("invoice", number.to_bytes(32, "big"), amount=number)
        tx = sign_transaction(senders[index], chain_id, nonces[index], body)
        encoded.append(encode_transaction(tx))
    return encoded


async def _post_all(
    targets: list[tuple[str, bytes]], concurrency: int, sent_at: dict[bytes, float]
) -> int:
    """Submit (node URL, transaction) pairs with `concurrency` workers; return refusals."""
    refused = 0
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for target in targets:
        queue.put_nowait(target)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal refused
        while not queue.empty():
            url, tx = queue.get_nowait()
            sent_at[compute_tx_id(tx)] = time.perf_counter()
            async with session.post(
                url + "/txs", data=tx, headers={"Content-Type": "application/octet-stream"}
            ) as r:
                await r.read()
                if r.status != 202:
                    refused += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return refused


async def _watch_commits(
    url: str,
    expected: int,
    committed_at: dict[bytes, float],
    block_sizes: list[int],
    timeout_s: float,
) -> None:
    """Follow new blocks and note when each transaction is first seen committed."""
    height = 0
    deadline = time.perf_counter() + timeout_s
    async with aiohttp.ClientSession() as session:
        while len(committed_at) < expected and time.perf_counter() < deadline:
            async with session.get(url + f"/blocks/{height + 1}") as response:
                if response.status == 404:
                    await asyncio.sleep(0.01)
                    continue
                block = await response.json()
            now = time.perf_counter()
            height += 1
            block_sizes.append(block["tx_count"])
            for tx in block["txs"]:
                committed_at.setdefault(bytes.fromhex(tx["tx_id"]), now)


async def _load(
    urls: list[str],
    chain_id: str,
    registrar: ed25519.SigningKey,
    senders: int,
    txs: int,
    concurrency: int,
) -> dict[str, Any]:
    """Admit senders, then submit pre-signed records and time their commits."""
    keys = [ed25519.signing_key_from_seed(os.urandom(32)) for _ in range(senders)]
    admits = [
        encode_transaction(
            sign_transaction(
                registrar,
                chain_id,
                i + 1,
                MemberAdmitBody(compute_address(k.public_key), "business"),
            )
        )
        for i, k in enumerate(keys)
    ]
    admitted: dict[bytes, float] = {}
    url = urls[0]
    await _post_all([(url, tx) for tx in admits], 1, {})
    await _watch_commits(url, len(admits), admitted, [], 60)
    if len(admitted) < len(admits):
        raise CliError("the benchmark's senders were not admitted in time")
    records = presign_records(chain_id, keys, txs)
    sent_at: dict[bytes, float] = {}
    committed_at: dict[bytes, float] = {bytes(k): v for k, v in admitted.items()}
    block_sizes: list[int] = []
    started = time.perf_counter()
    watcher = asyncio.create_task(
        _watch_commits(url, len(admits) + txs, committed_at, block_sizes, 600)
    )
    # A sender's transactions all go to one node (round-robin over senders), so its
    # nonces arrive in order; gossip brings them to every other node.
    targets = [(urls[(number % senders) % len(urls)], tx) for number, tx in enumerate(records)]
    refused = await _post_all(targets, concurrency, sent_at)
    await watcher
    return _summarise(sent_at, committed_at, block_sizes, started, refused)


def _summarise(
    sent_at: dict[bytes, float],
    committed_at: dict[bytes, float],
    block_sizes: list[int],
    started: float,
    refused: int,
) -> dict[str, Any]:
    """Turn submission and commit times into throughput and latency figures."""
    latencies = sorted(committed_at[t] - sent_at[t] for t in sent_at if t in committed_at)
    times = sorted(committed_at[t] for t in sent_at if t in committed_at)
    if len(times) < 10:
        raise CliError(f"only {len(times)} transactions committed; nothing to measure")
    skip = int(len(times) * WARM_UP_FRACTION)
    window = times[-1] - times[skip]
    committed_tps = (len(times) - skip) / window if window > 0 else float("nan")
    quantiles = statistics.quantiles(latencies, n=100)
    busy_blocks = [size for size in block_sizes if size]
    duration = times[-1] - started
    return {
        "transactions_submitted": len(sent_at),
        "transactions_committed": len(times),
        "transactions_refused": refused,
        "committed_tps": round(committed_tps, 1),
        "latency_p50_s": round(statistics.median(latencies), 4),
        "latency_p95_s": round(quantiles[94], 4),
        "latency_p99_s": round(quantiles[98], 4),
        "blocks": len(busy_blocks),
        "blocks_per_s": round(len(busy_blocks) / duration, 2) if duration > 0 else None,
        "txs_per_block": round(statistics.mean(busy_blocks), 1) if busy_blocks else 0,
        "duration_s": round(duration, 3),
    }


def _peak_memory_mb(pid: int) -> float | None:
    """Return a process's peak resident memory in MiB (Linux), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@click.command()
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
@click.option("--senders", type=click.IntRange(1, 5000), default=200, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=32,
    show_default=True,
    help="Submissions in flight at once.",
)
@json_option
def bench(validators: int, txs: int, senders: int, concurrency: int, as_json: bool) -> None:
    """Start a local network, submit pre-signed transactions as fast as it admits them,
    and print committed throughput and submission-to-commit latency.

    Example: danangchain bench --txs 20000 --json
    """
    folder = Path(tempfile.mkdtemp(prefix="danangchain-bench-"))
    password = os.urandom(16).hex()
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    try:
        made = init_network(
            folder / "net",
            validators,
            "danangchain-bench",
            find_free_ports(validators),
            password,
        )
        homes = [Path(node["home"]) for node in made["nodes"]]
        processes = start_all(homes, password_file, announce=False)
        try:
            registrar = unlock_key(
                read_keystore(Path(made["keystore"]) / "registrar.json"), password
            )
            urls = [url for url, _ in processes]
            figures = asyncio.run(
                _load(urls, made["chain_id"], registrar, min(senders, txs), txs, concurrency)
            )
            memory = [_peak_memory_mb(process.pid) for _, process in processes]
            figures["peak_memory_mb_per_node"] = max((m for m in memory if m), default=None)
        finally:
            for _, process in processes:
                stop_node_process(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    raw = measure_raw_verify_rate()
    cores = os.cpu_count() or 1
    figures.update(
        validators=validators,
        cores=cores,
        raw_verify_per_s=round(raw, 1),
        bound_ratio=round(figures["committed_tps"] / (cores * raw / validators), 3),
    )
    emit(as_json, figures, [f"{name:<28} {value}" for name, value in figures.items()])
