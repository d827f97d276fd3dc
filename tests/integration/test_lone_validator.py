"""A lone validator's driver makes a block only when transactions wait: a batch of
admissions wakes it once, and a wake-up made stale by the commit makes no empty block."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from danangchain import ed25519
from danangchain.transaction import MemberAdmitBody
from node.chain.ledger import Limits, NodeLedger
from node.consensus.driver import ConsensusDriver
from node.storage.store import Store

from .conftest import REGISTRAR, VALIDATOR, address_of, encode_signed, make_test_genesis

BATCH = 30


async def wait_until(condition: Callable[[], bool], deadline_s: float = 20.0) -> None:
    """Wait until a condition holds, failing after a deadline."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.005)


def admission(nonce: int) -> bytes:
    """The registrar's admission of a fresh member, with the given nonce."""
    member = ed25519.signing_key_from_seed(nonce.to_bytes(32, "big"))
    return encode_signed(REGISTRAR, nonce, MemberAdmitBody(address_of(member), "household"))


async def test_a_batch_makes_one_block_and_no_empty_ones_follow(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "data"))
    ledger = NodeLedger(make_test_genesis(), store, Limits())
    driver = ConsensusDriver(ledger, VALIDATOR, [], min_block_interval_s=0.02)
    running = asyncio.create_task(driver.run())
    try:
        await wait_until(lambda: driver.machine.waiting_for_txs)
        # One request's worth of transactions: each admission tells the driver.
        with ledger.admitting():
            for nonce in range(1, BATCH + 1):
                ledger.submit(admission(nonce))
        await wait_until(lambda: ledger.tip.height >= 1 and not len(ledger.mempool))
        # Long after the block interval, one more transaction: the next block is 2.
        last = ledger.submit(admission(BATCH + 1))
        await wait_until(lambda: ledger.reads.is_committed(last))
        assert ledger.tip.height == 2
        assert driver.events.qsize() == 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        store.close()
