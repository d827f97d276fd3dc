"""A member's second record of one document is refused by the node, from any client;
`/keys/{key}` gives a client all it needs to sign in one call; `/txs/{id}?wait=S` answers
once the transaction is final."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import pytest

from danangchain.transaction import RecordBody
from node.http.waiting import TICKS
from node.storage import schema

from .conftest import (
    BUSINESS,
    HOUSEHOLD,
    REGISTRAR,
    Node,
    StartNode,
    encode_signed,
    text_address_of,
)

INVOICE = RecordBody("invoice", hashlib.sha256(b"invoice 2026-118").digest(), 1_500_000)


async def test_a_second_record_of_a_committed_document_is_refused_naming_the_first(
    members_node: Node,
) -> None:
    node = members_node
    first = await node.submit_ok(encode_signed(BUSINESS, 1, INVOICE))
    node.produce_block()
    again = replace(INVOICE, memo="sent twice")  # another transaction, the same document
    status, refusal = await node.post_tx(encode_signed(BUSINESS, 2, again))
    assert status == 409
    assert refusal["error"] == "duplicate_record"
    assert refusal["values"] == {"record_id": first, "height": node.ledger.tip.height}
    assert (await node.get_ok(f"/accounts/{text_address_of(BUSINESS)}"))["records"] == [first]


async def test_a_second_record_of_a_pending_document_is_refused_naming_the_pending_one(
    members_node: Node,
) -> None:
    node = members_node
    first = await node.submit_ok(encode_signed(BUSINESS, 1, INVOICE))
    status, refusal = await node.post_tx(encode_signed(BUSINESS, 2, replace(INVOICE, memo="x")))
    assert (status, refusal["error"]) == (409, "duplicate_record")
    assert refusal["values"] == {"tx_id": first}
    node.produce_block()
    assert node.ledger.tip.height == 2


async def test_other_members_categories_amendments_and_a_cancelled_record_are_not_duplicates(
    members_node: Node,
) -> None:
    node = members_node
    first = await node.submit_ok(encode_signed(BUSINESS, 1, INVOICE))
    # Another member may record the same document, and the payment may cite the invoice.
    await node.submit_ok(encode_signed(HOUSEHOLD, 1, INVOICE))
    await node.submit_ok(encode_signed(BUSINESS, 2, replace(INVOICE, category="payment")))
    node.produce_block()
    amendment = replace(INVOICE, amount=1_600_000, reference=bytes.fromhex(first))
    await node.submit_ok(encode_signed(BUSINESS, 3, replace(amendment, reference_kind="amends")))
    cancel = replace(INVOICE, reference=bytes.fromhex(first), reference_kind="cancels")
    await node.submit_ok(encode_signed(BUSINESS, 4, cancel))
    node.produce_block()
    # The first stands no more: the document may be recorded again, once.
    second = await node.submit_ok(encode_signed(BUSINESS, 5, INVOICE))
    node.produce_block()
    status, refusal = await node.post_tx(encode_signed(BUSINESS, 6, INVOICE))
    assert status == 409 and refusal["values"]["record_id"] == second


async def test_a_store_made_before_the_document_index_gets_it_built_on_open(
    start_node: StartNode, tmp_path: object
) -> None:
    node = await start_node()
    for nonce, body in enumerate([INVOICE, replace(INVOICE, category="contract")], start=1):
        await node.submit_ok(encode_signed(REGISTRAR, nonce, body))
    node.produce_block()
    first = (await node.get_ok(f"/accounts/{text_address_of(REGISTRAR)}"))["records"][0]
    # Make the folder look like one an older version wrote: no index, no marker.
    db = node.store._db  # noqa: SLF001 - the test plays the older version
    stale = [key for key, _ in db.iterate(prefix=schema.TABLE_DOCUMENT)]
    with db.write_batch(sync=True) as batch:
        for key in stale:
            batch.delete(key)
        batch.delete(schema.META_DOCUMENT_INDEX)
    assert len(stale) == 2
    await node.stop()

    reopened = await start_node()
    status, refusal = await reopened.post_tx(encode_signed(REGISTRAR, 3, INVOICE))
    assert (status, refusal["values"]["record_id"]) == (409, first)


async def test_a_key_answer_holds_the_chain_id_and_next_nonce_counting_pending_ones(
    members_node: Node,
) -> None:
    node = members_node
    path = f"/keys/{BUSINESS.public_key.hex()}"
    before = await node.get_ok(path)
    assert before == {
        "public_key": BUSINESS.public_key.hex(),
        "address": text_address_of(BUSINESS),
        "chain_id": node.genesis.chain_id,
        "member": True,
        "role": "business",
        "revoked": False,
        "next_nonce": 1,
    }
    await node.submit_ok(encode_signed(BUSINESS, 1, INVOICE))
    assert (await node.get_ok(path))["next_nonce"] == 2
    outsider = await node.get_ok(f"/keys/{'ab' * 32}")
    assert outsider["member"] is False and "next_nonce" not in outsider


async def test_a_waiting_status_request_answers_at_the_commit(members_node: Node) -> None:
    node = members_node
    tx_id = await node.submit_ok(encode_signed(BUSINESS, 1, INVOICE))
    waiting = asyncio.create_task(node.get(f"/txs/{tx_id}?wait=20"))
    ticks = node.client.server.app[TICKS]
    deadline = asyncio.get_running_loop().time() + 10
    while ticks.waiting == 0:  # until the request waits in the server
        assert asyncio.get_running_loop().time() < deadline and not waiting.done()
        await asyncio.sleep(0.01)
    node.produce_block()
    status, answer = await asyncio.wait_for(waiting, 10)
    assert (status, answer["status"]) == (200, "committed")


async def test_a_waiting_status_request_gives_up_after_its_time(members_node: Node) -> None:
    tx_id = await members_node.submit_ok(encode_signed(BUSINESS, 1, INVOICE))
    status, answer = await members_node.get(f"/txs/{tx_id}?wait=0.05")
    assert (status, answer["status"]) == (200, "pending")


@pytest.mark.parametrize("wait", ["-1", "61", "soon", "nan", ""])
async def test_a_malformed_wait_is_400(members_node: Node, wait: str) -> None:
    status, answer = await members_node.get(f"/txs/{'ab' * 32}?wait={wait}")
    assert (status, answer["error"]) == (400, "bad_wait")


async def test_a_waiting_request_for_an_id_the_node_never_saw_answers_at_once(
    members_node: Node,
) -> None:
    waiting = members_node.get(f"/txs/{'ab' * 32}?wait=60")
    status, answer = await asyncio.wait_for(waiting, 5)
    assert (status, answer["status"]) == (404, "unknown")


async def test_two_payments_without_a_document_are_two_records(members_node: Node) -> None:
    node = members_node
    rent = RecordBody("payment", None, 3_000_000, None, "rent, December")
    first = await node.submit_ok(encode_signed(BUSINESS, 1, rent))
    second = await node.submit_ok(encode_signed(BUSINESS, 2, rent))
    node.produce_block()
    for record_id in (first, second):
        record = await node.get_ok(f"/records/{record_id}")
        assert record["doc_hash"] is None and record["amount"] == 3_000_000
    status, refusal = await node.post_tx(encode_signed(BUSINESS, 3, RecordBody("invoice", None)))
    assert (status, refusal["error"]) == (400, "bad_encoding")
