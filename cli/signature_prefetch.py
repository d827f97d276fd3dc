"""Transaction signatures checked ahead, on every core, for `audit verify`.

The auditor replays blocks one by one in this process (rules and the state root depend
on order); the signatures, which cost most and depend on nothing but the transaction,
are checked ahead in worker processes. This process decodes each block once, ahead of
the replay, and hands the workers only what a signature check reads: the sender's key,
the bytes it signed and the signature, in tasks of a few hundred transactions (a block
may span several tasks, a task several blocks). The auditor then replays the decoded
block; when it reaches a transaction it waits for that transaction's task only (so it
replays the start of a block while the workers still check its end), skips the check
of a transaction the workers accepted, and checks again, itself, any they did not: so a
bad signature is reported by the auditor with the same height and reason as without
workers, and the result never depends on them. A task no worker has started when the
auditor needs it (while the workers start up, or when they fall behind) is taken back
and checked here, with the same verifier.

The workers run the core's strict checks with libsodium's equation, the node's verifier
(node/chain/signatures.py), which accepts exactly what the core's own does.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from danangchain.block import Block, decode_block
from danangchain.errors import DanangChainError
from danangchain.transaction import compute_transaction_signing_bytes, compute_tx_id
from node.chain.verify_pool import lower_priority, worker_context

T = TypeVar("T")
CHUNK_BYTES = 512 * 1024  # blocks read ahead: about 2,500 record transactions per worker
SERIAL_BELOW_BYTES = 2 * CHUNK_BYTES  # a small chain is checked without workers
TASK_TXS = 500  # signatures per task: about 20 ms of a worker's time

# What a worker checks of one transaction: its sender's key, the signed bytes, the signature.
SignatureCheck = tuple[bytes, bytes, bytes]


def get_worker_context() -> multiprocessing.context.BaseContext:
    """Return how to start workers: forked from a fork server that imported the verifier
    once, or spawned where there is none (node/chain/verify_pool.py)."""
    return worker_context([__name__, "node.chain.signatures"])


def start_fork_server() -> None:
    """Start the fork server now, if workers come from one, so that it has imported the
    verifier by the time the first task is sent (a few milliseconds here)."""
    context = get_worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        with contextlib.suppress(OSError):  # then the pool starts it, or fails, later
            forkserver.ensure_running()


def yield_to_the_replay() -> None:
    """(In a worker) run at a lower priority than the auditor's process. The replay is
    the one part that runs in order: with a worker per core, the workers would take two
    thirds of its core from it and then, having checked everything read ahead, leave a
    core idle while it catches up. At a lower priority they use what it leaves."""
    lower_priority()


def accept_signatures(checks: list[SignatureCheck]) -> bytes:
    """(In a worker) return, for each check in order, 1 if the signature holds, else 0."""
    from node.chain.signatures import is_valid_signature  # the node's strict verifier

    return bytes(is_valid_signature(key, message, signature) for key, message, signature in checks)


def decode_ahead(data: bytes) -> Block | bytes:
    """Return the block stored bytes decode to, or the bytes themselves if they do not
    decode (the auditor decodes them again and names the fault at their height)."""
    try:
        return decode_block(data)
    except DanangChainError:
        return data


@dataclass(slots=True)
class _Ahead(Generic[T]):
    """A record read ahead: its block and where its transactions lie in the stream of
    every transaction read so far."""

    record: T
    block: Block | bytes
    size: int
    tx_ids: list[bytes]
    end: int  # one past the position of its last transaction


@dataclass(slots=True)
class _Task:
    """Signature checks sent to a worker together, in the order of their transactions."""

    future: concurrent.futures.Future[bytes] | None  # None: no worker could take it
    checks: list[SignatureCheck]
    verdicts: bytes | None = None  # once known: 1 for each signature that holds, else 0

    def get_verdicts(self) -> bytes | None:
        """Return the task's verdicts, waiting for its worker, or running it here if no
        worker has started it yet; None if no worker can give them."""
        if self.verdicts is None:
            if self.future is not None and self.future.cancel():
                self.verdicts = accept_signatures(self.checks)
            elif self.future is not None:
                try:
                    self.verdicts = self.future.result()
                except Exception:  # noqa: BLE001 - a lost worker, or one that failed
                    self.future = None  # the auditor checks these signatures itself
            self.checks = []
        return self.verdicts


class SignaturePrefetch:
    """Check the signatures of the blocks a source yields ahead of the auditor."""

    def __init__(
        self,
        workers: int,
        chunk_bytes: int = CHUNK_BYTES,
        serial_below_bytes: int = SERIAL_BELOW_BYTES,
        pool: concurrent.futures.Executor | None = None,
        task_txs: int = TASK_TXS,
    ) -> None:
        """`pool`: workers to use instead of starting some (kept open by the caller).
        Blocks are read ahead up to 2 × `chunk_bytes` per worker (and at least one)."""
        self.workers = workers
        self.chunk_bytes = chunk_bytes
        self.serial_below_bytes = serial_below_bytes
        self.task_txs = max(1, task_txs)
        # The transactions handed to workers and not yet replayed: their task and place.
        self._task_of: dict[bytes, tuple[_Task, int]] = {}
        self._pool: concurrent.futures.Executor | None = pool
        self._owns_pool = pool is None
        self._broken = False

    def is_verified(self, tx_id: bytes) -> bool:
        """Tell the auditor whether a worker accepted this transaction's signature
        (waiting for the worker if it has not finished the task yet)."""
        place = self._task_of.get(tx_id)
        if place is None:
            return False
        task, position = place
        verdicts = task.get_verdicts()
        return verdicts is not None and verdicts[position] == 1

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None and self._owns_pool:
            self._pool.shutdown(cancel_futures=True)
        self._pool = None

    def __enter__(self) -> SignaturePrefetch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(
        self, records: Iterable[T], block_bytes: Callable[[T], bytes]
    ) -> Iterator[tuple[T, Block | bytes]]:
        """Yield each record in order with its block (decoded, or its bytes), once the
        signature checks of its transactions are handed to the workers. An error the
        source raises is raised where it stands, after the records before it."""
        if self.workers <= 1:
            yield from ((entry, block_bytes(entry)) for entry in records)
            return
        if self._pool is None and not self._broken:
            start_fork_server()  # it imports the verifier while the first blocks are read
        run: _Run[T] = _Run(self, 2 * self.workers * self.chunk_bytes)
        source = iter(records)
        failure: BaseException | None = None
        try:
            while True:
                record: T | None
                try:
                    record = next(source, None)
                except Exception as exc:  # raised below, after every record before it
                    failure, record = exc, None
                if record is None:
                    break
                run.read(record, block_bytes(record))
                if not run.started and run.ahead_bytes >= self.serial_below_bytes:
                    run.start()
                while run.started and run.ahead_bytes > run.limit_bytes and len(run.ahead) > 1:
                    yield run.release()
            # A chain that ended below serial_below_bytes never started the workers.
            while run.ahead:
                yield run.release()
        finally:
            self._task_of.clear()
        if failure is not None:
            raise failure

    def submit(self, checks: list[SignatureCheck]) -> concurrent.futures.Future[bytes] | None:
        """Send checks to a worker; None when no worker can take them (the auditor then
        checks those signatures itself)."""
        if self._broken:
            return None
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=get_worker_context(), initializer=yield_to_the_replay
            )
        try:
            return self._pool.submit(accept_signatures, checks)
        except (concurrent.futures.process.BrokenProcessPool, RuntimeError, OSError):
            self._broken = True
            return None


class _Run(Generic[T]):
    """One pass over a source: records read ahead, and the task being filled."""

    def __init__(self, prefetch: SignaturePrefetch, limit_bytes: int) -> None:
        self.prefetch = prefetch
        self.limit_bytes = limit_bytes
        self.started = False  # whether workers are in use (not for a small chain)
        self.ahead: deque[_Ahead[T]] = deque()
        self.ahead_bytes = 0
        self.checks: list[SignatureCheck] = []  # the task being filled
        self.check_ids: list[bytes] = []
        self.read_txs = 0  # transactions read so far
        self.sent_txs = 0  # of which sent to workers
        self.released: list[bytes] = []

    def start(self) -> None:
        """Use the workers from now on: send them what was read so far."""
        self.started = True
        self.send(full_only=True)

    def read(self, record: T, data: bytes) -> None:
        """Decode a record's block and queue its signature checks."""
        block = decode_ahead(data)
        tx_ids: list[bytes] = []
        if isinstance(block, Block):
            for tx, raw in zip(block.transactions, block.tx_bytes, strict=True):
                tx_ids.append(compute_tx_id(raw))
                self.checks.append((tx.sender, compute_transaction_signing_bytes(tx), tx.signature))
            self.check_ids.extend(tx_ids)
            self.read_txs += len(tx_ids)
        self.ahead.append(_Ahead(record, block, len(data), tx_ids, self.read_txs))
        self.ahead_bytes += len(data)
        if self.started:
            self.send(full_only=True)

    def send(self, full_only: bool) -> None:
        """Send the queued checks to the workers in tasks of task_txs (and, unless
        full_only, the rest as a smaller task)."""
        size = self.prefetch.task_txs
        task_of = self.prefetch._task_of
        while len(self.checks) >= size or (self.checks and not full_only):
            checks, self.checks = self.checks[:size], self.checks[size:]
            tx_ids, self.check_ids = self.check_ids[:size], self.check_ids[size:]
            task = _Task(self.prefetch.submit(checks), checks)
            for position, tx_id in enumerate(tx_ids):
                task_of[tx_id] = (task, position)
            self.sent_txs += len(checks)

    def release(self) -> tuple[T, Block | bytes]:
        """Return the oldest record, every signature check of its block handed out."""
        entry = self.ahead.popleft()
        self.ahead_bytes -= entry.size
        task_of = self.prefetch._task_of
        for tx_id in self.released:  # the auditor is done with those
            task_of.pop(tx_id, None)
        self.released = entry.tx_ids
        if self.started and self.sent_txs < entry.end:
            self.send(full_only=False)
        return entry.record, entry.block
