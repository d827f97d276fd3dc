"""GET /events over a real LevelDB node, and `danangchain watch` reading it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from click.testing import CliRunner

from cli.main import cli
from danangchain.transaction import RecordBody
from node.http.events import FEED

from .conftest import (
    AUDITOR,
    BUSINESS,
    CHAIN_ID,
    HOUSEHOLD,
    REGISTRAR,
    Keystore,
    Node,
    address_of,
    encode_signed,
    text_address_of,
)

RECEIVE_TIMEOUT_S = 5.0


def record_body(memo: str, counterparty: bytes | None = None) -> RecordBody:
    """Return an invoice record, naming a counterparty if given."""
    return RecordBody(
        category="invoice",
        doc_hash=hashlib.sha256(memo.encode()).digest(),
        amount=1000,
        counterparty=counterparty,
        memo=memo,
    )


async def receive(socket: ClientWebSocketResponse) -> dict[str, Any]:
    """Return the next event, failing after a deadline."""
    message = await socket.receive(timeout=RECEIVE_TIMEOUT_S)
    assert message.type == WSMsgType.TEXT, message
    event: dict[str, Any] = json.loads(message.data)
    return event


async def wait_for_subscribers(node: Node, count: int) -> None:
    """Poll until the node's feed has `count` subscribers."""
    deadline = time.monotonic() + RECEIVE_TIMEOUT_S
    while len(node.client.app[FEED].subscribers) < count:
        assert time.monotonic() < deadline, "no events subscriber appeared"
        await asyncio.sleep(0.01)


async def test_events_announce_each_block_and_its_transactions(members_node: Node) -> None:
    node = members_node
    async with node.client.ws_connect("/events") as socket:
        hello = await receive(socket)
        assert hello["type"] == "hello"
        assert (hello["chain_id"], hello["height"], hello["address"]) == (CHAIN_ID, 1, None)
        tx_id = await node.submit_ok(
            encode_signed(BUSINESS, 1, record_body("<b>rice</b>", address_of(HOUSEHOLD)))
        )
        node.produce_block()
        block = await receive(socket)
        assert block["type"] == "block"
        assert block["height"] == 2
        assert block["tx_count"] == 1
        assert block["proposer_name"] == "validator-0"
        assert block["interval_ms"] is not None
        tx = await receive(socket)
        assert tx["type"] == "tx"
        assert tx["tx_id"] == tx_id
        assert tx["height"] == 2
        # Events are public: a record's category, never its memo or amount.
        assert tx["tx"]["body"]["category"] == "invoice"
        assert not {"memo", "amount", "counterparty", "doc_hash"} & set(tx["tx"]["body"])
        # Of the addresses, only the sender's: whom a record names is private.
        assert tx["addresses"] == [text_address_of(BUSINESS)]


async def test_events_filtered_by_address_carry_only_its_transactions(members_node: Node) -> None:
    node = members_node
    household = text_address_of(HOUSEHOLD)
    path = f"/events?address={household}"
    async with node.client.ws_connect(path, headers=node.sign_read(path, HOUSEHOLD)) as socket:
        assert (await receive(socket))["address"] == household
        await node.submit_ok(encode_signed(REGISTRAR, 3, record_body("not about the household")))
        about = await node.submit_ok(
            encode_signed(BUSINESS, 1, record_body("for the household", address_of(HOUSEHOLD)))
        )
        node.produce_block()
        # The registrar's record comes first in the block: the filter must skip it.
        event = await receive(socket)
        assert (event["type"], event["tx_id"]) == ("tx", about)


async def test_events_of_one_type_leave_the_other_out(members_node: Node) -> None:
    node = members_node
    async with node.client.ws_connect("/events?types=block") as socket:
        await receive(socket)
        await node.submit_ok(encode_signed(REGISTRAR, 3, record_body("one")))
        node.produce_block()
        await node.submit_ok(encode_signed(REGISTRAR, 4, record_body("two")))
        node.produce_block()
        heights = [(await receive(socket))["height"] for _ in range(2)]
        assert heights == [2, 3]  # block events only: no transaction came in between


async def test_events_refuse_unknown_types(node: Node) -> None:
    status, document = await node.get("/events?types=blocks")
    assert status == 400
    assert document["error"] == "bad_types"


async def test_events_refuse_a_bad_address_filter(node: Node) -> None:
    status, document = await node.get("/events?address=dn1nope")
    assert status == 400
    assert document["error"] == "bad_address"


async def test_events_without_a_websocket_upgrade_is_400(node: Node) -> None:
    status, document = await node.get("/events")
    assert status == 400
    assert document["error"] == "websocket_expected"


async def test_watch_prints_events_as_json_lines(members_node: Node) -> None:
    node = members_node
    url = str(node.client.make_url("/")).rstrip("/")
    runner = CliRunner()
    watching = asyncio.create_task(
        asyncio.to_thread(runner.invoke, cli, ["watch", "--node", url, "--count", "2", "--json"])
    )
    await wait_for_subscribers(node, 1)
    tx_id = await node.submit_ok(encode_signed(REGISTRAR, 3, record_body("watched")))
    node.produce_block()
    result = await asyncio.wait_for(watching, RECEIVE_TIMEOUT_S)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [event["type"] for event in lines] == ["block", "tx"]
    assert lines[1]["tx_id"] == tx_id


async def test_following_an_address_needs_its_members_or_an_auditors_signature(
    members_node: Node,
) -> None:
    node = members_node
    path = f"/events?address={text_address_of(HOUSEHOLD)}"
    assert (await node.get(path, as_key=None))[1]["error"] == "auth_required"
    assert (await node.get(path, as_key=BUSINESS))[1]["error"] == "not_allowed"
    async with node.client.ws_connect(path, headers=node.sign_read(path, AUDITOR)) as socket:
        assert (await receive(socket))["type"] == "hello"
    [entry] = (await node.get_ok("/access-log", as_key=HOUSEHOLD))["entries"]
    assert (entry["route"], entry["reader_role"]) == ("events", "auditor")


async def test_watch_prints_readable_lines_for_people(
    members_node: Node, keystore: Keystore
) -> None:
    node = members_node
    url = str(node.client.make_url("/")).rstrip("/")
    household = text_address_of(HOUSEHOLD)
    runner = CliRunner()
    arguments = ["watch", "--node", url, "--address", household, "--count", "1"]
    arguments += keystore.options("household")
    watching = asyncio.create_task(asyncio.to_thread(runner.invoke, cli, arguments))
    await wait_for_subscribers(node, 1)
    await node.submit_ok(
        encode_signed(BUSINESS, 1, record_body("tea, 3 boxes", address_of(HOUSEHOLD)))
    )
    node.produce_block()
    result = await asyncio.wait_for(watching, RECEIVE_TIMEOUT_S)
    assert result.exit_code == 0, result.output
    assert "record from" in result.stdout
    assert "record from" in result.stdout and ": invoice" in result.stdout
    assert "tea, 3 boxes" not in result.stdout


def test_watch_refuses_a_node_url_without_http() -> None:
    result = CliRunner().invoke(cli, ["watch", "--node", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "must start with http://" in result.output


async def test_the_feed_publishes_committed_blocks_without_reading_them_back(
    members_node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = members_node
    feed = node.client.app[FEED]
    feed.catch_up()
    store = node.store

    def guard(read: Any) -> Any:
        def no_read_of_the_new_block(height: int) -> Any:
            assert height != 2, "the feed read block 2 back from the store"
            return read(height)

        return no_read_of_the_new_block

    async with node.client.ws_connect("/events") as socket:
        assert (await receive(socket))["type"] == "hello"
        tx_id = await node.submit_ok(encode_signed(BUSINESS, 1, record_body("fresh")))
        for name in ("get_block", "get_block_bytes", "get_certificate"):
            monkeypatch.setattr(store, name, guard(getattr(store, name)))
        node.produce_block()
        assert (await receive(socket))["height"] == 2
        assert (await receive(socket))["tx_id"] == tx_id
    assert not feed.fresh
