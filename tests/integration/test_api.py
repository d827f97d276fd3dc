"""The client API over HTTP against one in-process node with a real LevelDB store."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from danangchain.address import CHARSET
from danangchain.consensus import encode_message
from danangchain.ed25519 import SigningKey
from danangchain.encoding import pack, unpack
from danangchain.transaction import (
    EndorseBody,
    MemberAdmitBody,
    MemberRevokeBody,
    RecordBody,
    compute_tx_id,
    sign_transaction,
)
from danangchain.validators import PRECOMMIT, sign_vote
from node.chain.ledger import Limits, NodeLedger
from node.storage.store import Store, StoreError

from .conftest import (
    BUSINESS,
    CHAIN_ID,
    HOUSEHOLD,
    OUTSIDER,
    REGISTRAR,
    VALIDATOR,
    Node,
    StartNode,
    address_of,
    encode_signed,
    make_key,
    make_test_genesis,
    text_address_of,
)

JSON_HEADERS = {"Content-Type": "application/json"}
REGISTRAR_NONCE_AFTER_ADMISSIONS = 2  # members_node: the registrar admitted two members


def make_record_body(memo: str = "rice, 20 kg", counterparty: bytes | None = None) -> RecordBody:
    """Return an invoice record body whose document hash depends on the memo."""
    return RecordBody(
        category="invoice",
        doc_hash=hashlib.sha256(memo.encode()).digest(),
        amount=250_000,
        counterparty=counterparty,
        memo=memo,
    )


def household_record(nonce: int = 1, memo: str = "rice, 20 kg") -> bytes:
    """Return the bytes of a household's record with the given nonce."""
    return encode_signed(HOUSEHOLD, nonce, make_record_body(memo))


def tx_id_of(tx_bytes: bytes) -> str:
    """Return the hex id of canonical transaction bytes."""
    return compute_tx_id(tx_bytes).hex()


async def observe_ledger(node: Node) -> dict[str, Any]:
    """Return what a refused submission must leave unchanged: tip, mempool and nonces."""
    status = await node.get_ok("/status")
    accounts = {}
    for key in (REGISTRAR, HOUSEHOLD, BUSINESS):
        code, account = await node.get(f"/accounts/{text_address_of(key)}")
        accounts[text_address_of(key)] = (code, account.get("nonce"), account.get("next_nonce"))
    return {
        "height": status["height"],
        "latest_block_hash": status["latest_block_hash"],
        "state_root": status["state_root"],
        "mempool_size": status["mempool_size"],
        "ledger_mempool_len": len(node.ledger.mempool),
        "accounts": accounts,
    }


async def assert_refused(
    node: Node,
    body: bytes,
    status: int,
    code: str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Submit a body, check the JSON refusal, and check the ledger did not change."""
    before = await observe_ledger(node)
    got_status, document = await node.post_tx(body, headers)
    assert (got_status, document.get("error")) == (status, code), document
    assert isinstance(document["message"], str) and document["message"]
    assert await observe_ledger(node) == before
    return dict(document)


# GET /status


async def test_status_reports_chain_id_height_and_latest_block_hash(node: Node) -> None:
    status = await node.get_ok("/status")
    assert status["chain_id"] == CHAIN_ID
    assert status["height"] == 0
    assert status["latest_block_hash"] == node.genesis.hash.hex()
    assert status["genesis_hash"] == node.genesis.hash.hex()
    assert status["mempool_size"] == 0
    assert status["node_name"] == "integration"


async def test_status_height_grows_after_a_block_is_produced(node: Node) -> None:
    await node.submit_ok(encode_signed(REGISTRAR, 1, make_record_body()))
    node.produce_block()
    status = await node.get_ok("/status")
    latest = await node.get_ok("/blocks/latest")
    assert status["height"] == 1
    assert status["latest_block_hash"] == latest["hash"]
    assert status["latest_block_hash"] != node.genesis.hash.hex()
    assert status["mempool_size"] == 0


async def test_produce_one_with_an_empty_mempool_makes_no_block(node: Node) -> None:
    node.produce_block()
    assert (await node.get_ok("/status"))["height"] == 0


# POST /txs and GET /txs/{id}: accepted


async def test_raw_tx_bytes_are_accepted_as_pending(node: Node) -> None:
    raw = encode_signed(REGISTRAR, 1, make_record_body())
    status, document = await node.post_tx(raw)
    assert status == 202
    assert document == {"tx_id": tx_id_of(raw), "status": "pending"}
    assert await node.get_ok(f"/txs/{tx_id_of(raw)}") == {
        "status": "pending",
        "tx_id": tx_id_of(raw),
    }
    assert (await node.get_ok("/status"))["mempool_size"] == 1


async def test_json_hex_form_is_accepted_as_pending(node: Node) -> None:
    raw = encode_signed(REGISTRAR, 1, make_record_body())
    status, document = await node.post_tx_json({"tx": raw.hex()})
    assert status == 202
    assert document == {"tx_id": tx_id_of(raw), "status": "pending"}
    assert (await node.get_ok(f"/txs/{tx_id_of(raw)}"))["status"] == "pending"


async def test_tx_moves_from_pending_to_committed_with_height_index_and_block_hash(
    node: Node,
) -> None:
    first = encode_signed(REGISTRAR, 1, make_record_body("first"))
    second = encode_signed(REGISTRAR, 2, make_record_body("second"))
    await node.submit_ok(first)
    await node.submit_ok(second)
    assert (await node.get_ok(f"/txs/{tx_id_of(second)}"))["status"] == "pending"

    node.produce_block()

    block = await node.get_ok("/blocks/1")
    committed = await node.get_ok(f"/txs/{tx_id_of(second)}")
    assert committed["status"] == "committed"
    assert (committed["height"], committed["index"]) == (1, 1)
    assert committed["block_hash"] == block["hash"]
    assert committed["tx"]["tx_id"] == tx_id_of(second)
    assert committed["tx"]["nonce"] == 2
    assert committed["tx"]["sender"] == text_address_of(REGISTRAR)
    assert (await node.get_ok(f"/txs/{tx_id_of(first)}"))["index"] == 0


async def test_unknown_tx_id_is_404_with_status_unknown(node: Node) -> None:
    unknown = "ab" * 32
    status, document = await node.get(f"/txs/{unknown}")
    assert status == 404
    assert document["status"] == "unknown"
    assert document["error"] == "not_found"
    assert document["tx_id"] == unknown


@pytest.mark.parametrize(
    "tx_id",
    ["abc", "ab" * 31 + "a", "ab" * 33, "zz" * 32, "AB" * 16],
    ids=["short", "odd_length", "too_long", "not_hex", "half_length"],
)
async def test_malformed_tx_id_is_400(node: Node, tx_id: str) -> None:
    status, document = await node.get(f"/txs/{tx_id}")
    assert status == 400
    assert document["error"] == "bad_id"
    assert document["message"]


# POST /txs: every refusal is a JSON 4xx that changes nothing


async def test_invalid_garbage_bytes_refused_as_bad_encoding(members_node: Node) -> None:
    await assert_refused(members_node, b"\xc1\xff garbage \x00", 400, "bad_encoding")


async def test_invalid_empty_raw_body_refused_as_bad_encoding(members_node: Node) -> None:
    await assert_refused(members_node, b"", 400, "bad_encoding")


async def test_invalid_empty_json_body_refused_as_bad_encoding(members_node: Node) -> None:
    await assert_refused(members_node, b"", 400, "bad_encoding", JSON_HEADERS)


async def test_invalid_trailing_bytes_after_a_valid_tx(members_node: Node) -> None:
    raw = household_record()
    document = await assert_refused(members_node, raw + b"\x00", 400, "bad_encoding")
    assert "trailing" in document["message"]
    # The same tx without the extra byte is fine: only the trailing byte was refused.
    await members_node.submit_ok(raw)


def transaction_field_parts(tx_bytes: bytes) -> list[bytes]:
    """Return the canonical encoding of each of a transaction's seven fields."""
    return [pack(field) for field in unpack(tx_bytes)]


def encode_non_canonically(tx_bytes: bytes, variant: str) -> bytes:
    """Re-encode one field of a valid tx in a longer msgpack form that decodes to the same value."""
    version, chain_id, sender, nonce, kind, body, signature = unpack(tx_bytes)
    parts = transaction_field_parts(tx_bytes)
    head = b"\x97"  # fixarray of 7
    assert head + b"".join(parts) == tx_bytes
    if variant == "nonce_as_uint8":
        assert nonce < 128
        parts[3] = b"\xcc" + bytes([nonce])
    elif variant == "nonce_as_uint64":
        parts[3] = b"\xcf" + nonce.to_bytes(8, "big")
    elif variant == "chain_id_as_str8":
        parts[1] = b"\xd9" + bytes([len(chain_id)]) + chain_id.encode()
    elif variant == "body_as_array16":
        parts[5] = b"\xdc" + len(body).to_bytes(2, "big") + b"".join(pack(f) for f in body)
    elif variant == "signature_as_bin16":
        parts[6] = b"\xc5" + len(signature).to_bytes(2, "big") + signature
    elif variant == "outer_array16":
        head = b"\xdc\x00\x07"
    else:
        raise AssertionError(variant)
    mutated = head + b"".join(parts)
    assert mutated != tx_bytes
    return mutated


@pytest.mark.parametrize(
    "variant",
    [
        "nonce_as_uint8",
        "nonce_as_uint64",
        "chain_id_as_str8",
        "body_as_array16",
        "signature_as_bin16",
        "outer_array16",
    ],
)
async def test_invalid_non_canonical_encoding_of_a_signed_tx(
    members_node: Node, variant: str
) -> None:
    mutated = encode_non_canonically(household_record(), variant)
    document = await assert_refused(members_node, mutated, 400, "bad_encoding")
    assert "non-canonical" in document["message"]


def replace_field(tx_bytes: bytes, index: int, value: Any) -> bytes:
    """Return a tx's field array with one field replaced, packed canonically."""
    fields = unpack(tx_bytes)
    fields[index] = value
    return pack(fields)


WRONG_FIELD_TYPES = {
    "version_2": lambda raw: replace_field(raw, 0, 2),
    "version_as_string": lambda raw: replace_field(raw, 0, "1"),
    "chain_id_as_bytes": lambda raw: replace_field(raw, 1, CHAIN_ID.encode()),
    "sender_as_hex_string": lambda raw: replace_field(raw, 2, HOUSEHOLD.public_key.hex()),
    "sender_of_31_bytes": lambda raw: replace_field(raw, 2, HOUSEHOLD.public_key[:31]),
    "nonce_as_string": lambda raw: replace_field(raw, 3, "1"),
    "nonce_as_boolean": lambda raw: replace_field(raw, 3, True),
    "nonce_zero": lambda raw: replace_field(raw, 3, 0),
    "nonce_negative": lambda raw: replace_field(raw, 3, -1),
    "kind_as_integer": lambda raw: replace_field(raw, 4, 1),
    "kind_unknown": lambda raw: replace_field(raw, 4, "transfer"),
    "body_as_map": lambda raw: replace_field(raw, 5, {"category": "invoice"}),
    "body_with_amount_as_string": lambda raw: replace_field(raw, 5, _body_with(raw, 2, "250")),
    "body_with_amount_as_boolean": lambda raw: replace_field(raw, 5, _body_with(raw, 2, True)),
    "body_with_unknown_category": lambda raw: replace_field(raw, 5, _body_with(raw, 0, "gift")),
    "signature_as_string": lambda raw: replace_field(raw, 6, "00" * 64),
    "signature_of_63_bytes": lambda raw: replace_field(raw, 6, bytes(63)),
    "six_fields": lambda raw: pack(unpack(raw)[:6]),
    "eight_fields": lambda raw: pack([*unpack(raw), None]),
    "a_map_not_an_array": lambda raw: pack({"version": 1}),
    "a_bare_integer": lambda raw: pack(1),
}


def _body_with(tx_bytes: bytes, index: int, value: Any) -> list[Any]:
    """Return a tx's body field array with one item replaced."""
    body = list(unpack(tx_bytes)[5])
    body[index] = value
    return body


@pytest.mark.parametrize("case", sorted(WRONG_FIELD_TYPES))
async def test_invalid_wrong_field_types_refused_as_bad_encoding(
    members_node: Node, case: str
) -> None:
    mutated = WRONG_FIELD_TYPES[case](household_record())
    await assert_refused(members_node, mutated, 400, "bad_encoding")


async def test_invalid_version_as_boolean_true_refused_as_bad_encoding(
    members_node: Node,
) -> None:
    mutated = replace_field(household_record(), 0, True)
    await assert_refused(members_node, mutated, 400, "bad_encoding")


async def test_invalid_bad_signature(members_node: Node) -> None:
    tx = sign_transaction(HOUSEHOLD, CHAIN_ID, 1, make_record_body())
    raw = household_record()
    signature = bytearray(tx.signature)
    signature[0] ^= 0x01
    tampered = replace_field(raw, 6, bytes(signature))
    await assert_refused(members_node, tampered, 400, "bad_signature")


async def test_invalid_signature_of_another_body(members_node: Node) -> None:
    signed = sign_transaction(HOUSEHOLD, CHAIN_ID, 1, make_record_body("the real memo"))
    swapped = replace_field(household_record(memo="a different memo"), 6, signed.signature)
    await assert_refused(members_node, swapped, 400, "bad_signature")


async def test_invalid_unknown_sender(members_node: Node) -> None:
    raw = encode_signed(OUTSIDER, 1, make_record_body())
    document = await assert_refused(members_node, raw, 400, "unknown_sender")
    assert text_address_of(OUTSIDER) in document["message"]


async def test_invalid_revoked_sender(members_node: Node) -> None:
    revoke = encode_signed(
        REGISTRAR, REGISTRAR_NONCE_AFTER_ADMISSIONS + 1, MemberRevokeBody(address_of(HOUSEHOLD))
    )
    await members_node.submit_ok(revoke)
    members_node.produce_block()
    assert (await members_node.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}"))["revoked"]
    await assert_refused(members_node, household_record(nonce=1), 400, "revoked_sender")


@pytest.mark.parametrize("nonce", [2, 1000])
async def test_invalid_wrong_nonce(members_node: Node, nonce: int) -> None:
    document = await assert_refused(members_node, household_record(nonce), 400, "wrong_nonce")
    assert "expected 1" in document["message"]
    # The rule's template and values, for clients that speak the user's language.
    assert document["template"] == "nonce {nonce}, expected {expected}"
    assert document["values"] == {"nonce": nonce, "expected": 1}


async def test_invalid_nonce_already_used_by_a_committed_tx(members_node: Node) -> None:
    await members_node.submit_ok(household_record(1, memo="first"))
    members_node.produce_block()
    await assert_refused(members_node, household_record(1, memo="other"), 400, "wrong_nonce")


async def test_invalid_wrong_chain_id(members_node: Node) -> None:
    raw = encode_signed(HOUSEHOLD, 1, make_record_body(), chain_id="danang-other")
    await assert_refused(members_node, raw, 400, "wrong_chain_id")


async def test_invalid_raw_body_of_5_kb_is_413_too_large(members_node: Node) -> None:
    await assert_refused(members_node, b"\x00" * 5 * 1024, 413, "too_large")


async def test_invalid_json_hex_of_5_kb_is_413_too_large(members_node: Node) -> None:
    body = json.dumps({"tx": "00" * 5 * 1024}).encode()
    await assert_refused(members_node, body, 413, "too_large", JSON_HEADERS)


async def test_invalid_raw_body_of_1_mb_is_413_too_large(members_node: Node) -> None:
    await assert_refused(members_node, b"\x00" * 1024 * 1024, 413, "too_large")


async def test_invalid_replay_of_a_committed_tx_is_409_duplicate(members_node: Node) -> None:
    raw = household_record()
    await members_node.submit_ok(raw)
    members_node.produce_block()
    await assert_refused(members_node, raw, 409, "duplicate")
    await assert_refused(members_node, raw.hex().encode(), 400, "bad_encoding")


async def test_invalid_duplicate_of_a_pending_tx_is_409_duplicate(members_node: Node) -> None:
    raw = household_record()
    await members_node.submit_ok(raw)
    document = await assert_refused(members_node, raw, 409, "duplicate")
    assert "pending" in document["message"]
    # The JSON form of the same bytes is the same transaction.
    body = json.dumps({"tx": raw.hex()}).encode()
    await assert_refused(members_node, body, 409, "duplicate", JSON_HEADERS)


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'["00"]',
        b'"9700"',
        b"42",
        b"null",
        b"true",
        b"{}",
        b'{"transaction": "00"}',
        b'{"tx": 42}',
        b'{"tx": null}',
        b'{"tx": "not hex"}',
        b'{"tx": ["00"]}',
        b"{not json",
        b"\xff\xfe\x00",
    ],
)
async def test_invalid_json_body_that_is_not_a_tx_object(members_node: Node, body: bytes) -> None:
    await assert_refused(members_node, body, 400, "bad_encoding", JSON_HEADERS)


async def test_invalid_json_hex_of_garbage_bytes(members_node: Node) -> None:
    body = json.dumps({"tx": "c1ff00"}).encode()
    await assert_refused(members_node, body, 400, "bad_encoding", JSON_HEADERS)


async def test_invalid_deeply_nested_json_body_refused_as_bad_encoding(
    members_node: Node,
) -> None:
    await assert_refused(members_node, b"[" * 8000, 400, "bad_encoding", JSON_HEADERS)


async def test_refusals_leave_a_later_valid_tx_acceptable(members_node: Node) -> None:
    for body in (b"", b"garbage", household_record(nonce=5)):
        status, _ = await members_node.post_tx(body)
        assert 400 <= status < 500
    await members_node.submit_ok(household_record(nonce=1))
    members_node.produce_block()
    account = await members_node.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}")
    assert account["nonce"] == 1


# GET /blocks/{height}


async def test_block_by_height_and_latest_include_hash_header_and_txs(node: Node) -> None:
    raw = encode_signed(REGISTRAR, 1, make_record_body())
    await node.submit_ok(raw)
    node.produce_block()

    block = await node.get_ok("/blocks/1")
    assert block == await node.get_ok("/blocks/latest")
    assert block["height"] == 1
    assert len(block["hash"]) == 64
    header = block["header"]
    assert header["chain_id"] == CHAIN_ID
    assert header["height"] == 1
    assert header["previous_hash"] == node.genesis.hash.hex()
    assert header["state_root"] == (await node.get_ok("/status"))["state_root"]
    assert block["tx_count"] == 1
    (tx,) = block["txs"]
    assert tx["tx_id"] == tx_id_of(raw)
    assert tx["kind"] == "record"
    assert tx["body"]["memo"] == "rice, 20 kg"
    assert block["last_commit"] is None
    assert block["certificate"]["block_hash"] == block["hash"]


async def test_second_block_links_to_the_first_and_carries_its_certificate(node: Node) -> None:
    for nonce in (1, 2):
        await node.submit_ok(encode_signed(REGISTRAR, nonce, make_record_body(f"r{nonce}")))
        node.produce_block()
    first = await node.get_ok("/blocks/1")
    second = await node.get_ok("/blocks/latest")
    assert second["height"] == 2
    assert second["header"]["previous_hash"] == first["hash"]
    assert second["last_commit"] == first["certificate"]


@pytest.mark.parametrize("height", ["0", "999", "latest"])
async def test_block_that_does_not_exist_is_404(node: Node, height: str) -> None:
    status, document = await node.get(f"/blocks/{height}")
    assert status == 404
    assert document["error"] == "not_found"
    assert document["message"]


@pytest.mark.parametrize("height", ["0", "999"])
async def test_block_outside_the_chain_is_404_after_blocks_exist(node: Node, height: str) -> None:
    await node.submit_ok(encode_signed(REGISTRAR, 1, make_record_body()))
    node.produce_block()
    status, document = await node.get(f"/blocks/{height}")
    assert status == 404
    assert document["error"] == "not_found"


@pytest.mark.parametrize("height", ["abc", "-1", "1.5", "0x1", "9" * 20])
async def test_block_height_that_is_not_a_number_is_400(node: Node, height: str) -> None:
    status, document = await node.get(f"/blocks/{height}")
    assert status == 400
    assert document["error"] == "bad_height"


async def test_block_height_with_a_non_ascii_digit_is_400(node: Node) -> None:
    status, document = await node.get("/blocks/%C2%B2")
    assert (status, document["error"]) == (400, "bad_height")


# GET /accounts/{address}


async def test_account_shows_role_nonce_and_admission(members_node: Node) -> None:
    account = await members_node.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}")
    assert account["address"] == text_address_of(HOUSEHOLD)
    assert account["role"] == "household"
    assert (account["nonce"], account["next_nonce"], account["pending_txs"]) == (0, 1, 0)
    assert account["revoked"] is False
    assert account["admitted_height"] == 1
    assert account["records"] == []
    registrar = await members_node.get_ok(f"/accounts/{text_address_of(REGISTRAR)}")
    assert registrar["role"] == "registrar"
    assert registrar["nonce"] == REGISTRAR_NONCE_AFTER_ADMISSIONS


async def test_next_nonce_counts_three_pending_txs(members_node: Node) -> None:
    path = f"/accounts/{text_address_of(HOUSEHOLD)}"
    committed_nonce = (await members_node.get_ok(path))["nonce"]
    for offset in (1, 2, 3):
        raw = household_record(committed_nonce + offset, memo=f"pending {offset}")
        await members_node.submit_ok(raw)
    account = await members_node.get_ok(path)
    assert account["nonce"] == committed_nonce
    assert account["next_nonce"] == committed_nonce + 4
    assert account["pending_txs"] == 3

    members_node.produce_block()

    account = await members_node.get_ok(path)
    assert (account["nonce"], account["next_nonce"]) == (committed_nonce + 3, committed_nonce + 4)
    assert len(account["records"]) == 3


def change_one_character(text: str, position: int) -> str:
    """Return the text with the character at a position replaced by another valid one."""
    replacement = next(c for c in CHARSET if c != text[position])
    return text[:position] + replacement + text[position + 1 :]


@pytest.mark.parametrize("position", [5, 20, -1])
async def test_address_with_one_character_changed_is_400_bad_address(
    members_node: Node, position: int
) -> None:
    address = text_address_of(HOUSEHOLD)
    status, document = await members_node.get(
        f"/accounts/{change_one_character(address, position)}"
    )
    assert status == 400
    assert document["error"] == "bad_address"
    assert document["message"]


@pytest.mark.parametrize("address", ["dn1", "nothing", "bc1" + "q" * 38, "DN1" + "q" * 38])
async def test_malformed_address_is_400_bad_address(members_node: Node, address: str) -> None:
    status, document = await members_node.get(f"/accounts/{address}")
    assert (status, document["error"]) == (400, "bad_address")


async def test_valid_address_of_a_non_member_is_404(members_node: Node) -> None:
    status, document = await members_node.get(f"/accounts/{text_address_of(OUTSIDER)}")
    assert status == 404
    assert document["error"] == "not_found"
    assert text_address_of(OUTSIDER) in document["message"]


async def test_account_admitted_only_in_the_mempool_is_still_404(node: Node) -> None:
    admit = MemberAdmitBody(address_of(HOUSEHOLD), "household")
    await node.submit_ok(encode_signed(REGISTRAR, 1, admit))
    status, _ = await node.get(f"/accounts/{text_address_of(HOUSEHOLD)}")
    assert status == 404
    node.produce_block()
    assert (await node.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}"))["role"] == "household"


# GET /records/{id}


async def test_record_is_endorsed_after_the_counterparty_endorses_it(members_node: Node) -> None:
    body = make_record_body("invoice 17", counterparty=address_of(HOUSEHOLD))
    record = encode_signed(BUSINESS, 1, body)
    record_id = await members_node.submit_ok(record)
    members_node.produce_block()

    before = await members_node.get_ok(f"/records/{record_id}")
    assert before["endorsed"] is False
    assert before["endorsed_height"] is None
    assert before["height"] == 2

    await members_node.submit_ok(encode_signed(HOUSEHOLD, 1, EndorseBody(bytes.fromhex(record_id))))
    members_node.produce_block()

    after = await members_node.get_ok(f"/records/{record_id}")
    assert after["endorsed"] is True
    assert after["endorsed_height"] == 3
    assert after["record_id"] == record_id
    assert after["creator"] == text_address_of(BUSINESS)
    assert after["counterparty"] == text_address_of(HOUSEHOLD)
    assert after["doc_hash"] == body.doc_hash.hex()
    assert after["amount"] == body.amount


async def test_unknown_record_is_404_and_malformed_record_id_is_400(node: Node) -> None:
    status, document = await node.get(f"/records/{'cd' * 32}")
    assert (status, document["error"]) == (404, "not_found")
    status, document = await node.get("/records/xyz")
    assert (status, document["error"]) == (400, "bad_id")


async def test_pending_record_is_not_yet_visible(members_node: Node) -> None:
    record_id = await members_node.submit_ok(household_record())
    status, _ = await members_node.get(f"/records/{record_id}")
    assert status == 404


# A whole flow


async def test_household_and_business_flow_record_and_endorse_commit_in_one_block(
    node: Node,
) -> None:
    await node.submit_ok(
        encode_signed(REGISTRAR, 1, MemberAdmitBody(address_of(HOUSEHOLD), "household"))
    )
    await node.submit_ok(
        encode_signed(REGISTRAR, 2, MemberAdmitBody(address_of(BUSINESS), "business"))
    )
    node.produce_block()
    business = await node.get_ok(f"/accounts/{text_address_of(BUSINESS)}")
    assert (business["role"], business["admitted_height"]) == ("business", 1)

    invoice = make_record_body("invoice 2024-001", counterparty=address_of(HOUSEHOLD))
    record_id = await node.submit_ok(encode_signed(BUSINESS, 1, invoice))
    # The endorse is checked against the pending record, before any block holds it.
    endorse_id = await node.submit_ok(
        encode_signed(HOUSEHOLD, 1, EndorseBody(bytes.fromhex(record_id)))
    )
    assert (await node.get_ok("/status"))["mempool_size"] == 2

    node.produce_block()

    status = await node.get_ok("/status")
    assert (status["height"], status["mempool_size"]) == (2, 0)
    committed_record = await node.get_ok(f"/txs/{record_id}")
    committed_endorse = await node.get_ok(f"/txs/{endorse_id}")
    assert committed_record["height"] == committed_endorse["height"] == 2
    assert (committed_record["index"], committed_endorse["index"]) == (0, 1)
    block = await node.get_ok("/blocks/2")
    assert [tx["kind"] for tx in block["txs"]] == ["record", "endorse"]
    assert block["txs"][1]["body"] == {"record_id": record_id}

    record = await node.get_ok(f"/records/{record_id}")
    assert record["endorsed"] is True
    assert record["endorsed_height"] == 2
    for key in (BUSINESS, HOUSEHOLD):
        account = await node.get_ok(f"/accounts/{text_address_of(key)}")
        assert account["records"] == [record_id]
        assert account["nonce"] == 1

    # A second endorse of the same record is refused and changes nothing.
    again = encode_signed(HOUSEHOLD, 2, EndorseBody(bytes.fromhex(record_id)))
    await assert_refused(node, again, 400, "already_endorsed")


# Restart and store integrity


async def test_restart_on_the_same_folder_keeps_tip_state_root_and_committed_txs(
    members_node: Node, start_node: StartNode
) -> None:
    node = members_node
    tx_ids = [
        await node.submit_ok(household_record(1, memo="before restart")),
        await node.submit_ok(
            encode_signed(BUSINESS, 1, make_record_body("inv", address_of(HOUSEHOLD)))
        ),
    ]
    node.produce_block()
    tx_ids.append(await node.submit_ok(household_record(2, memo="second block")))
    node.produce_block()
    tx_ids += [tx["tx_id"] for tx in (await node.get_ok("/blocks/1"))["txs"]]
    before_status = await node.get_ok("/status")
    before_txs = {tx_id: await node.get_ok(f"/txs/{tx_id}") for tx_id in tx_ids}
    before_account = await node.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}")
    assert before_status["height"] == 3

    await node.stop()
    reopened = await start_node(folder=node.folder)

    after_status = await reopened.get_ok("/status")
    for field in ("height", "latest_block_hash", "state_root", "latest_block_time_ms"):
        assert after_status[field] == before_status[field], field
    assert reopened.ledger.tip == node.ledger.tip
    for tx_id, before in before_txs.items():
        assert await reopened.get_ok(f"/txs/{tx_id}") == before
        assert reopened.store.get_tx_location(bytes.fromhex(tx_id)) == (
            before["height"],
            before["index"],
        )
    assert await reopened.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}") == before_account
    # The reopened node keeps building on the same chain; old txs stay duplicates.
    await reopened.submit_ok(household_record(3, memo="after restart"))
    reopened.produce_block()
    latest = await reopened.get_ok("/blocks/latest")
    assert latest["height"] == 4
    assert latest["header"]["previous_hash"] == before_status["latest_block_hash"]
    await assert_refused(reopened, household_record(1, memo="before restart"), 409, "duplicate")


async def test_store_made_for_another_genesis_is_refused(node: Node) -> None:
    await node.submit_ok(encode_signed(REGISTRAR, 1, make_record_body()))
    node.produce_block()
    await node.stop()

    store = Store.open(str(node.folder))
    try:
        with pytest.raises(StoreError, match="another chain"):
            NodeLedger(make_test_genesis("danang-elsewhere"), store, Limits())
        # The refusal wrote nothing: the right genesis still opens the folder at its tip.
        ledger = NodeLedger(node.genesis, store, Limits())
        assert ledger.tip == node.ledger.tip
    finally:
        store.close()


async def test_store_made_for_another_genesis_is_refused_even_when_empty(
    node: Node,
) -> None:
    await node.stop()
    store = Store.open(str(node.folder))
    try:
        with pytest.raises(StoreError, match="another chain"):
            NodeLedger(make_test_genesis("danang-elsewhere"), store, Limits())
    finally:
        store.close()


# Mempool bound


async def test_full_mempool_refuses_with_503_mempool_full(start_node: StartNode) -> None:
    node = await start_node(limits=Limits(mempool_max_txs=2))
    for nonce in (1, 2):
        await node.submit_ok(encode_signed(REGISTRAR, nonce, make_record_body(f"r{nonce}")))
    third = encode_signed(REGISTRAR, 3, make_record_body("r3"))
    await assert_refused(node, third, 503, "mempool_full")
    # Once a block drains the mempool the same transaction is admitted.
    node.produce_block()
    await node.submit_ok(third)


# Routing


@pytest.mark.parametrize("path", ["/nope", "/blocks", "/txs/a/b", "/explorer/nope"])
async def test_unknown_route_is_404_json(node: Node, path: str) -> None:
    response = await node.client.get(path)
    assert response.status == 404
    assert response.content_type == "application/json"
    document = await response.json()
    assert document["error"] == "not_found"
    assert document["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/status"), ("GET", "/txs"), ("POST", "/blocks/1"), ("PUT", "/txs")],
)
async def test_wrong_method_is_405_json(node: Node, method: str, path: str) -> None:
    response = await node.client.request(method, path)
    assert response.status == 405
    assert response.content_type == "application/json"
    document = await response.json()
    assert document["error"] == "method_not_allowed"
    assert document["message"]


async def test_wrong_method_405_names_the_allowed_methods(node: Node) -> None:
    response = await node.client.request("DELETE", "/status")
    assert response.status == 405
    assert "GET" in response.headers.get("Allow", "")


async def record_with_a_rotated_key(node: Node) -> tuple[SigningKey, str]:
    """Bind a new key to the household, record with it; return the key and the record's id."""
    replacement = make_key(12)
    rotate = MemberAdmitBody(address_of(HOUSEHOLD), "household", replacement.public_key)
    await node.submit_ok(encode_signed(REGISTRAR, REGISTRAR_NONCE_AFTER_ADMISSIONS + 1, rotate))
    node.produce_block()
    tx_id = await node.submit_ok(encode_signed(replacement, 1, make_record_body("after a loss")))
    node.produce_block()
    return replacement, tx_id


async def test_a_rotated_key_s_transactions_name_the_member_it_signs_for(
    members_node: Node,
) -> None:
    node = members_node
    replacement, tx_id = await record_with_a_rotated_key(node)
    expected = {
        "sender": text_address_of(HOUSEHOLD),
        "key_address": text_address_of(replacement),
        "sender_public_key": replacement.public_key.hex(),
    }
    found = await node.get_ok(f"/txs/{tx_id}")
    assert {name: found["tx"][name] for name in expected} == expected
    block = await node.get_ok(f"/blocks/{found['height']}")
    assert {name: block["txs"][0][name] for name in expected} == expected
    # A member signing with its own key: both addresses are the member's.
    admission = (await node.get_ok("/blocks/1"))["txs"][0]
    assert admission["sender"] == admission["key_address"] == text_address_of(REGISTRAR)


async def test_a_record_signed_with_a_rotated_key_is_filed_under_its_member(
    members_node: Node,
) -> None:
    node = members_node
    replacement, tx_id = await record_with_a_rotated_key(node)
    account = await node.get_ok(f"/accounts/{text_address_of(HOUSEHOLD)}")
    assert tx_id in account["records"]
    # The new key's own address is nobody's account, and holds no index entry.
    assert node.ledger.reads.records_of(address_of(replacement)) == []


async def test_pending_transactions_survive_a_restart_and_commit_after_it(
    start_node: StartNode,
) -> None:
    node = await start_node()
    # An admission, then the new member's records, which depend on it.
    admit = encode_signed(REGISTRAR, 1, MemberAdmitBody(address_of(HOUSEHOLD), "household"))
    records = [household_record(nonce, memo=f"pending {nonce}") for nonce in (1, 2, 3)]
    for tx_bytes in (admit, *records):
        await node.submit_ok(tx_bytes)
    assert len(node.store.list_pending()) == 4
    await node.stop()

    reopened = await start_node(folder=node.folder)
    assert reopened.ledger.restored == 4
    for tx_bytes in (admit, *records):
        assert (await reopened.get_ok(f"/txs/{tx_id_of(tx_bytes)}"))["status"] == "pending"
    reopened.produce_block()
    for tx_bytes in (admit, *records):
        assert (await reopened.get_ok(f"/txs/{tx_id_of(tx_bytes)}"))["status"] == "committed"
    # Committed transactions are no longer kept as pending, in the same synced batch.
    assert reopened.store.list_pending() == []


async def test_kept_transactions_no_longer_valid_are_dropped_at_restart(
    start_node: StartNode,
) -> None:
    node = await start_node()
    admit = encode_signed(REGISTRAR, 1, MemberAdmitBody(address_of(HOUSEHOLD), "household"))
    await node.submit_ok(admit)
    # A kept transaction that can never apply (its sender was never admitted), and bytes
    # that are no transaction at all, as a damaged entry would be.
    rival = encode_signed(OUTSIDER, 1, make_record_body("from nobody"))
    node.store.put_pending([(compute_tx_id(rival), rival), (b"\x01" * 32, b"not a transaction")])
    await node.stop()

    reopened = await start_node(folder=node.folder)
    assert reopened.ledger.restored == 1
    assert [tx_id for tx_id, _ in reopened.store.list_pending()] == [compute_tx_id(admit)]
    dropped = await reopened.get_ok(f"/txs/{tx_id_of(rival)}")
    assert dropped["status"] == "rejected" and "unknown_sender" in dropped["reason"]


async def test_a_batch_answers_each_transaction_and_keeps_the_admitted_ones(
    members_node: Node,
) -> None:
    node = members_node
    good = [household_record(1, memo="one"), household_record(2, memo="two")]
    stale = household_record(7, memo="gap")
    response = await node.client.post(
        "/txs/batch", data=pack([*good, stale]), headers={"Content-Type": "application/msgpack"}
    )
    assert response.status == 200
    answer = await response.json()
    assert answer["admitted"] == 2
    assert [r["status"] for r in answer["results"]] == ["pending", "pending", "refused"]
    assert answer["results"][2]["error"] == "wrong_nonce"
    assert answer["results"][2]["values"] == {"nonce": 7, "expected": 3}
    kept = sorted(tx_id.hex() for tx_id, _ in node.store.list_pending())
    assert kept == sorted(tx_id_of(tx) for tx in good)
    node.produce_block()
    assert node.store.list_pending() == []


async def test_a_peer_s_transaction_is_not_kept_by_the_node_that_heard_it(
    members_node: Node,
) -> None:
    tx_id = members_node.ledger.submit(household_record(1), from_peer=True)
    assert tx_id in members_node.ledger.mempool
    assert members_node.store.list_pending() == []


async def test_evidence_lists_conflicting_votes_with_checkable_signatures(node: Node) -> None:
    assert await node.get_ok("/evidence") == {"count": 0, "evidence": []}
    votes = [sign_vote(VALIDATOR, CHAIN_ID, PRECOMMIT, 5, 0, bytes([fill]) * 32) for fill in (1, 2)]
    encoded = pack([encode_message(vote) for vote in votes])
    node.store.put_evidence(5, hashlib.sha256(encoded).digest(), encoded)
    listed = await node.get_ok("/evidence")
    assert listed["count"] == 1
    (entry,) = listed["evidence"]
    assert (entry["validator"], entry["height"], entry["round"], entry["vote_type"]) == (
        VALIDATOR.public_key.hex(),
        5,
        0,
        "precommit",
    )
    assert [v["block_hash"] for v in entry["votes"]] == ["01" * 32, "02" * 32]
    assert all(v["signature_valid"] for v in entry["votes"])
    assert (await node.get_ok("/evidence?limit=0"))["count"] == 0
    status, refused = await node.get("/evidence?limit=many")
    assert status == 400 and refused["error"] == "bad_query"
