"""Transaction signatures checked on the machine's other cores.

A node's event loop is one thread: admission, validation and commits run there one at a
time. The signatures, which cost most and depend on nothing but the transaction's bytes,
are checked here in worker processes for what arrives in numbers (a client's batch, a
peer's gossip, blocks fetched by sync), while the loop goes on with other work. The
workers run the node's own strict verifier (node/chain/signatures.py), and they only
vouch: an id they accepted is a transaction, byte for byte (its id is the hash of its
bytes, signature included), whose signature holds. What they did not accept is checked
again in the node by the usual path, which says why, so nothing they answer can change
what a node accepts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence

from danangchain.errors import DanangChainError
from danangchain.transaction import compute_tx_id, decode_transaction

# Fewer transactions than this are checked in the node itself: sending them to a worker
# and back costs more than checking them (one check is about 45 µs).
MIN_POOLED = 32
# The most workers "auto" starts, however many cores the machine has.
MAX_AUTO_WORKERS = 8
# How often a worker looks whether its node is still there.
PARENT_CHECK_S = 0.5


# Workers run below the process they serve, which does the work that must be in order
# (a node's event loop, an auditor's replay): they use what it leaves of the cores.
WORKER_NICENESS = 10


def available_cores() -> int:
    """Return the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    """Return how to start signature workers: forked from a fork server that imported
    only `preload` (the verifier), or spawned where there is no fork server. Never
    forked from the calling process itself, which holds threads, sockets and LevelDB;
    a spawned worker would import the caller's main module and the verifier again."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


def lower_priority() -> None:
    """(In a worker) run at WORKER_NICENESS; where that is not permitted, as is."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(WORKER_NICENESS)


def auto_workers() -> int:
    """Return how many workers "auto" means here: one per core (none on a single core).

    They run below the event loop (WORKER_NICENESS), so the one on the loop's core only
    takes what the loop leaves. A node that catches up waits for its workers: on two
    cores, a new node synced 40,000 transactions at 21,200-22,600 tx/s with two against
    16,800-18,000 with one; a lone validator under load committed the same with either."""
    cores = available_cores()
    return 0 if cores < 2 else min(MAX_AUTO_WORKERS, cores)


def accept_transactions(items: Sequence[bytes]) -> list[bytes]:
    """(In a worker) return the ids of the transactions whose signatures hold."""
    from node.chain.signatures import verify_transaction

    accepted = []
    for tx_bytes in items:
        try:
            verify_transaction(decode_transaction(tx_bytes))
        except DanangChainError:
            continue  # the node checks it again and says why
        accepted.append(compute_tx_id(tx_bytes))
    return accepted


def _warm_up() -> None:
    """(In a worker) load the verifier before the first real task."""
    import node.chain.signatures  # noqa: F401


def _start_worker(node: int) -> None:
    """(In a worker) run below the node's event loop, and exit as soon as the node that
    started it is gone, even killed: the worker holds its own task queue open, so it
    would not notice on its own. Its parent is the node, or the fork server the node
    started (which exits with the node); either way, a new parent means it is gone."""
    lower_priority()
    parent = os.getppid()
    if parent != node and not _is_alive(node):
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent and _is_alive(node):
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="node-watch", daemon=True).start()


def _is_alive(pid: int) -> bool:
    """Tell whether a process is still there (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SignaturePool:
    """Worker processes that check transaction signatures for the node's event loop."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a signature pool needs at least one worker")
        self.workers = workers
        self._executor = concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=worker_context([__name__, "node.chain.signatures"]),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
        for _ in range(workers):  # start the workers now, not on the first batch
            self._executor.submit(_warm_up)

    async def accept(self, items: Sequence[bytes]) -> list[bytes]:
        """Return the ids of the transactions whose signatures the workers accepted
        (none for fewer than MIN_POOLED, or if the pool has failed)."""
        if len(items) < MIN_POOLED:
            return []
        loop = asyncio.get_running_loop()
        size = max(MIN_POOLED, -(-len(items) // self.workers))
        chunks = [list(items[start : start + size]) for start in range(0, len(items), size)]
        try:
            answers = await asyncio.gather(
                *(loop.run_in_executor(self._executor, accept_transactions, c) for c in chunks)
            )
        except (concurrent.futures.process.BrokenProcessPool, RuntimeError):
            return []  # the node checks everything itself
        return [tx_id for answer in answers for tx_id in answer]

    def close(self) -> None:
        """Stop the workers without waiting for their tasks."""
        self._executor.shutdown(wait=False, cancel_futures=True)
