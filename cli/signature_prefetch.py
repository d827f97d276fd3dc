"""Transaction signatures checked ahead, on every core, for `audit verify`.

The auditor replays blocks one by one in this process (rules and the state root depend
on order); the signatures, which cost most and depend on nothing but the transaction,
are checked ahead in worker processes, a chunk of blocks at a time. The auditor then
skips the check of a transaction the workers accepted, and checks again, itself, any
they did not: so a bad signature is reported by the auditor with the same height and
reason as without workers, and the result never depends on them.

The workers run the core's strict checks with libsodium's equation, the node's verifier
(node/chain/signatures.py), which accepts exactly what the core's own does.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from danangchain.block import decode_block
from danangchain.errors import DanangChainError
from danangchain.transaction import compute_tx_id

T = TypeVar("T")
CHUNK_BYTES = 512 * 1024  # about 2,500 record transactions per task
SERIAL_BELOW_BYTES = 2 * CHUNK_BYTES  # a small chain is checked without workers


def default_workers() -> int:
    """Return the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def accept_signatures(blocks: list[bytes]) -> list[bytes]:
    """(In a worker) return the ids of the blocks' transactions whose signatures hold."""
    from node.chain.signatures import verify_transaction  # the node's strict verifier

    accepted = []
    for data in blocks:
        try:
            block = decode_block(data)
        except DanangChainError:
            continue  # the auditor names the fault
        for tx, raw in zip(block.transactions, block.tx_bytes, strict=False):
            try:
                verify_transaction(tx)
            except DanangChainError:
                continue
            accepted.append(compute_tx_id(raw))
    return accepted


class SignaturePrefetch:
    """Check the signatures of the blocks a source yields ahead of the auditor."""

    def __init__(
        self,
        workers: int,
        chunk_bytes: int = CHUNK_BYTES,
        serial_below_bytes: int = SERIAL_BELOW_BYTES,
        pool: concurrent.futures.Executor | None = None,
    ) -> None:
        """`pool`: workers to use instead of starting some (kept open by the caller)."""
        self.workers = workers
        self.chunk_bytes = chunk_bytes
        self.serial_below_bytes = serial_below_bytes
        self.accepted: set[bytes] = set()
        self._pool: concurrent.futures.Executor | None = pool
        self._owns_pool = pool is None

    def is_verified(self, tx_id: bytes) -> bool:
        """Tell the auditor whether a worker accepted this transaction's signature."""
        return tx_id in self.accepted

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None and self._owns_pool:
            self._pool.shutdown(cancel_futures=True)
        self._pool = None

    def __enter__(self) -> SignaturePrefetch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, records: Iterable[T], block_bytes: Callable[[T], bytes]) -> Iterator[T]:
        """Yield the records in order, each once its chunk's signatures are checked. An
        error the source raises is raised where it stands, after the records before it."""
        if self.workers <= 1:
            yield from records
            return
        source = iter(records)
        pending: deque[tuple[concurrent.futures.Future[list[bytes]] | None, list[T]]] = deque()
        chunk: list[T] = []
        size = 0
        failure: BaseException | None = None
        while True:
            try:
                record = next(source, None)
            except Exception as exc:  # raised below, after every record before it
                failure, record = exc, None
            if record is None:
                break
            chunk.append(record)
            size += len(block_bytes(record))
            if size >= self.chunk_bytes:
                pending.append((self._submit([block_bytes(r) for r in chunk]), chunk))
                chunk, size = [], 0
            while len(pending) > 2 * self.workers:
                yield from self._release(*pending.popleft())
        if chunk:
            small = not pending and size < self.serial_below_bytes
            future = None if small else self._submit([block_bytes(r) for r in chunk])
            pending.append((future, chunk))
        while pending:
            yield from self._release(*pending.popleft())
        if failure is not None:
            raise failure

    def _submit(self, blocks: list[bytes]) -> concurrent.futures.Future[list[bytes]]:
        if self._pool is None:
            # Spawned, not forked: the auditor's process may hold threads and sockets.
            context = multiprocessing.get_context("spawn")
            self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context)
        return self._pool.submit(accept_signatures, blocks)

    def _release(
        self, future: concurrent.futures.Future[list[bytes]] | None, chunk: list[T]
    ) -> Iterator[T]:
        try:
            self.accepted = set(future.result()) if future is not None else set()
        except (concurrent.futures.process.BrokenProcessPool, OSError):
            self.accepted = set()  # no workers: the auditor checks every signature itself
        yield from chunk
