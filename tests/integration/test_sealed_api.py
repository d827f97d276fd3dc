"""Sealed records through the node's API: the content travels beside the transaction and
is checked against its commitment, binding and recipients; nodes keep it off the block,
serve it with the record, delete it when an erase commits, and the state root and
inclusion proofs never depend on it."""

from __future__ import annotations

import os
from typing import Any

import pytest

from danangchain.address import ADDRESS_SIZE
from danangchain.errors import InvalidTransaction
from danangchain.ledger import build_block, make_candidate
from danangchain.sealing import (
    Binding,
    PrivateFields,
    compute_content_hash,
    decode_envelope,
    derive_encryption_key,
    encryption_public_key,
    open_envelope,
    seal,
)
from danangchain.transaction import (
    KIND_SEALED_RECORD,
    AuditKeysBody,
    EraseBody,
    MemberAdmitBody,
    SealedRecordBody,
    decode_transaction,
)
from danangchain.validators import PRECOMMIT, make_certificate, sign_vote
from node.storage import schema

from .conftest import (
    BUSINESS,
    CHAIN_ID,
    HOUSEHOLD,
    REGISTRAR,
    VALIDATOR,
    Node,
    address_of,
    encode_signed,
)

SHOP_KEY, HOME_KEY, AUDIT_KEY = (derive_encryption_key(bytes([s]) * 32) for s in (4, 3, 7))
SHOP_PUB, HOME_PUB, AUDIT_PUB = (encryption_public_key(k) for k in (SHOP_KEY, HOME_KEY, AUDIT_KEY))
MARKER = "marker-9f1c-private-memo"


async def admit_with_keys(node: Node) -> None:
    for nonce, (key, role, published) in enumerate(
        [(HOUSEHOLD, "household", HOME_PUB), (BUSINESS, "business", SHOP_PUB)], start=1
    ):
        body = MemberAdmitBody(address_of(key), role, None, published)
        await node.submit_ok(encode_signed(REGISTRAR, nonce, body))
    await node.submit_ok(encode_signed(REGISTRAR, 3, AuditKeysBody((AUDIT_PUB,))))
    node.produce_block()


def sealed_record(
    nonce: int, recipients: list[bytes], binding: Binding | None = None
) -> tuple[bytes, bytes]:
    binding = binding or Binding(CHAIN_ID, address_of(BUSINESS), nonce, KIND_SEALED_RECORD)
    envelope = seal(PrivateFields(1_500_000, MARKER), binding, recipients, os.urandom)
    body = SealedRecordBody(
        "invoice", bytes([nonce]) * 32, compute_content_hash(envelope), address_of(HOUSEHOLD)
    )
    return encode_signed(BUSINESS, nonce, body), envelope


async def post_sealed(node: Node, tx: bytes, envelope: bytes | None) -> tuple[int, Any]:
    document = {"tx": tx.hex()} | ({} if envelope is None else {"sealed": envelope.hex()})
    return await node.post_tx_json(document)


async def test_a_sealed_record_is_served_with_its_content_and_erased_for_good(
    node: Node,
) -> None:
    await admit_with_keys(node)
    tx, envelope = sealed_record(1, [SHOP_PUB, HOME_PUB, AUDIT_PUB])
    status, answer = await post_sealed(node, tx, envelope)
    assert status == 202, answer
    record_id = answer["tx_id"]
    node.produce_block()
    block = node.store.get_block_bytes(node.ledger.tip.height)
    assert block is not None and envelope not in block and MARKER.encode() not in block
    record = await node.get_ok(f"/records/{record_id}")
    assert (record["memo"], record["amount"]) == ("", None)
    served = bytes.fromhex(record["sealed"]["envelope"])
    assert open_envelope(decode_envelope(served), HOME_KEY).memo == MARKER
    root_before = node.ledger.tip.state_root
    proof = await node.get_ok(f"/proofs/tx/{record_id}")

    await node.submit_ok(encode_signed(BUSINESS, 2, EraseBody(bytes.fromhex(record_id))))
    node.produce_block()
    record = await node.get_ok(f"/records/{record_id}")
    assert record["sealed"]["erased"] and record["sealed"]["envelope"] is None
    assert node.store.get_sealed(bytes.fromhex(record_id)) is None
    assert node.ledger.tip.state_root != root_before  # the tombstone is a state write
    assert await node.get_ok(f"/proofs/tx/{record_id}") == proof


async def test_the_node_refuses_content_that_is_missing_changed_moved_or_short_of_a_reader(
    node: Node,
) -> None:
    await admit_with_keys(node)
    tx, envelope = sealed_record(1, [SHOP_PUB, HOME_PUB, AUDIT_PUB])
    refusals = [
        (await post_sealed(node, tx, None), "bad_sealed_content"),
        (
            await post_sealed(node, tx, envelope[:-1] + bytes([envelope[-1] ^ 1])),
            "bad_sealed_content",
        ),
    ]
    moved_binding = Binding(CHAIN_ID, bytes(ADDRESS_SIZE), 1, KIND_SEALED_RECORD)
    refusals.append(
        (await post_sealed(node, *sealed_record(1, [SHOP_PUB, HOME_PUB, AUDIT_PUB], moved_binding)),
         "bad_sealed_content")
    )  # fmt: skip
    refusals.append(
        (await post_sealed(node, *sealed_record(1, [SHOP_PUB, HOME_PUB])), "missing_recipient")
    )
    plain = encode_signed(BUSINESS, 1, EraseBody(bytes(32)))
    refusals.append((await post_sealed(node, plain, envelope), "bad_sealed_content"))
    for (status, answer), code in refusals:
        assert (status, answer["error"]) == (400, code), answer
    assert len(node.ledger.mempool) == 0
    assert list(node.store._db.iterate(prefix=schema.TABLE_SEALED)) == []
    status, answer = await node.post_tx_json({"tx": tx.hex(), "sealed": "zz"})
    assert (status, answer["error"]) == (400, "bad_encoding")


async def test_content_passed_on_while_its_record_is_in_flight_is_kept(node: Node) -> None:
    """The node validated a block with a sealed record it had not seen; a peer passes the
    record on with its content before the commit: the content is checked and kept, and
    served once the block commits."""
    await admit_with_keys(node)
    tx, envelope = sealed_record(1, [SHOP_PUB, HOME_PUB, AUDIT_PUB])
    ledger = node.ledger
    result, _ = build_block(
        ledger.get_committed_view(),
        ledger.tip,
        CHAIN_ID,
        [make_candidate(decode_transaction(tx), tx)],
        ledger.clock(),
        VALIDATOR.public_key,
        node.store.get_certificate(ledger.tip.height),
    )
    validated = ledger.validate_block(result.block)
    with pytest.raises(InvalidTransaction, match="not the one the transaction commits to"):
        ledger.submit(tx, from_peer=True, sealed=envelope[:-1] + bytes([envelope[-1] ^ 1]))
    assert node.store.get_sealed(validated.tx_ids[0]) is None
    ledger.submit(tx, from_peer=True, sealed=envelope)
    block = result.block
    vote = sign_vote(VALIDATOR, CHAIN_ID, PRECOMMIT, block.height, 0, block.hash)
    ledger.commit(validated, make_certificate([vote]))
    record = await node.get_ok(f"/records/{validated.tx_ids[0].hex()}")
    assert bytes.fromhex(record["sealed"]["envelope"]) == envelope
