"""A record's status everywhere: cancelled (with its height) and amended by, in
/records/{id}, `query record`'s text, and the explorer's record and account pages."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

from click.testing import CliRunner

from cli.main import cli
from danangchain.transaction import RecordBody

from .conftest import BUSINESS, Keystore, Node, encode_signed, text_address_of

INVOICE = RecordBody("invoice", hashlib.sha256(b"invoice 7").digest(), 1_500_000, None, "rice")


async def commit(node: Node, nonce: int, body: RecordBody) -> str:
    tx_id = await node.submit_ok(encode_signed(BUSINESS, nonce, body))
    node.produce_block()
    return tx_id


async def test_an_amended_then_cancelled_record_says_so_everywhere(
    members_node: Node, keystore: Keystore
) -> None:
    node = members_node
    original = await commit(node, 1, INVOICE)
    amends = replace(INVOICE, amount=1_600_000, reference=bytes.fromhex(original))
    amendment = await commit(node, 2, replace(amends, reference_kind="amends"))
    record = await node.get_ok(f"/records/{original}")
    assert record["amended_by"] == [amendment] and not record["cancelled"]
    assert (await node.get_ok(f"/records/{amendment}"))["amended_by"] == []

    cancel = replace(INVOICE, memo="void", reference=bytes.fromhex(original))
    await commit(node, 3, replace(cancel, reference_kind="cancels"))
    record = await node.get_ok(f"/records/{original}")
    assert record["cancelled"] and record["cancelled_height"] == node.ledger.tip.height

    url = str(node.client.make_url("")).rstrip("/")
    shown = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["query", "record", original, "--node", url, *keystore.options("business")],
    )
    assert shown.exit_code == 0, shown.output
    assert f"cancelled at height {record['cancelled_height']}" in shown.output
    assert f"amended by {amendment}" in shown.output

    page = await (await node.client.get(f"/explorer/txs/{original}")).text()
    assert f'<a href="/explorer/txs/{amendment}">{amendment}</a>' in page
    account = await (
        await node.client.get(f"/explorer/accounts/{text_address_of(BUSINESS)}")
    ).text()
    assert f"cancelled at {record['cancelled_height']}, amended" in account
