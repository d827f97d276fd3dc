"""Signatures checked on worker processes: the same verdicts, the same order, each counted
once, and a bad signature still refused by the node with its reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from danangchain import ed25519
from danangchain.encoding import pack
from danangchain.transaction import MemberAdmitBody, compute_tx_id
from node.chain.verify_pool import MIN_POOLED, SignaturePool
from node.p2p.service import submit_gossiped

from .conftest import REGISTRAR, StartNode, address_of, encode_signed

MSGPACK = {"Content-Type": "application/msgpack"}


@pytest.fixture(scope="module")
def pool() -> Iterator[SignaturePool]:
    workers = SignaturePool(2)
    yield workers
    workers.close()


def admission(nonce: int) -> bytes:
    member = ed25519.signing_key_from_seed(nonce.to_bytes(32, "big"))
    return encode_signed(REGISTRAR, nonce, MemberAdmitBody(address_of(member), "household"))


def forged(tx_bytes: bytes) -> bytes:
    """The same transaction with the last byte of its signature changed."""
    return tx_bytes[:-1] + bytes([tx_bytes[-1] ^ 1])


async def test_the_workers_accept_exactly_the_good_signatures(pool: SignaturePool) -> None:
    good = [admission(nonce) for nonce in range(1, 61)]
    bad = forged(admission(61))
    accepted = await pool.accept([*good[:30], bad, b"not a transaction", *good[30:]])
    assert sorted(accepted) == sorted(compute_tx_id(tx) for tx in good)
    # Too few to be worth the trip: the node checks them itself.
    assert await pool.accept(good[: MIN_POOLED - 1]) == []


async def test_a_batch_through_the_pool_is_admitted_and_a_forgery_refused(
    start_node: StartNode, pool: SignaturePool
) -> None:
    node = await start_node(pool=pool)
    batch = [admission(nonce) for nonce in range(1, 41)]
    batch[39] = forged(batch[39])
    response = await node.client.post("/txs/batch", data=pack(batch), headers=MSGPACK)
    document = await response.json()
    assert response.status == 200
    assert document["admitted"] == 39
    assert document["results"][39]["error"] == "bad_signature"
    checked = node.ledger.signatures.checked
    assert checked["transaction", "valid"] == 39
    assert checked["transaction", "invalid"] == 1
    assert not node.ledger.preverified  # used up by admission


async def test_concurrent_batches_are_admitted_in_the_order_they_came(
    start_node: StartNode, pool: SignaturePool
) -> None:
    node = await start_node(pool=pool)
    # The second batch's nonces follow the first's: admitted out of order, they would
    # be refused. The second is too small for the workers, so it is ready at once.
    first = [admission(nonce) for nonce in range(1, 201)]
    second = [admission(nonce) for nonce in range(201, 211)]
    answers = await asyncio.gather(
        *(
            node.client.post("/txs/batch", data=pack(batch), headers=MSGPACK)
            for batch in (first, second)
        )
    )
    documents = [await answer.json() for answer in answers]
    assert [document["admitted"] for document in documents] == [200, 10]
    assert len(node.ledger.mempool) == 210


async def test_blocks_checked_ahead_are_validated_without_checking_again(
    start_node: StartNode, pool: SignaturePool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    source = await start_node()
    for nonce in range(1, 41):
        await source.submit_ok(admission(nonce))
    block = source.ledger.propose_block(
        source.ledger.genesis.validator_set.validators[0].public_key
    )
    follower = await start_node(folder=tmp_path_factory.mktemp("follower"), pool=pool)
    await follower.ledger.preverify(list(block.block.tx_bytes))
    assert len(follower.ledger.preverified) == 40
    result = follower.ledger.validate_block(block.block)
    assert result.tx_ids == block.tx_ids
    assert follower.ledger.signatures.checked["transaction", "valid"] == 40


async def test_gossip_of_a_block_in_flight_is_not_sent_to_the_workers(
    start_node: StartNode, pool: SignaturePool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The follower checked the block's signatures while validating it: the gossip that
    brings the same transactions before the commit is admitted without the workers or
    the node checking any of them again."""
    source = await start_node()
    batch = [admission(nonce) for nonce in range(1, 41)]
    for tx in batch:
        await source.submit_ok(tx)
    block = source.ledger.propose_block(
        source.ledger.genesis.validator_set.validators[0].public_key
    )
    follower = await start_node(folder=tmp_path_factory.mktemp("follower"), pool=pool)
    follower.ledger.validate_block(block.block)
    await submit_gossiped(follower.ledger, batch)
    assert len(follower.ledger.mempool) == 40 and not follower.ledger.preverified
    assert follower.ledger.signatures.checked["transaction", "valid"] == 40


async def test_a_caller_that_leaves_while_waiting_keeps_the_order_of_the_others(
    start_node: StartNode, pool: SignaturePool
) -> None:
    node = await start_node(pool=pool)
    ledger = node.ledger
    order: list[str] = []

    async def submit(name: str, items: list[bytes]) -> None:
        async with ledger.verified_ahead(items):
            order.append(name)

    first = asyncio.create_task(submit("first", [admission(n) for n in range(1, 201)]))
    await asyncio.sleep(0)
    second = asyncio.create_task(submit("second", [admission(1)]))
    third = asyncio.create_task(submit("third", [admission(2)]))
    await asyncio.sleep(0)
    second.cancel()  # it waits for the first; the third must still wait for the first
    await asyncio.gather(first, third, second, return_exceptions=True)
    assert order == ["first", "third"]
