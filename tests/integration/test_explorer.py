"""The explorer's pages, rendered by a real LevelDB node: content, escaping, search."""

from __future__ import annotations

import hashlib

from danangchain.transaction import MemberAdmitBody, RecordBody

from .conftest import (
    BUSINESS,
    HOUSEHOLD,
    REGISTRAR,
    Node,
    address_of,
    encode_signed,
    make_key,
    text_address_of,
)

HOSTILE_MEMO = '<script>alert(1)</script> & "quotes"'


async def page(node: Node, path: str, status: int = 200) -> str:
    """GET an explorer page and return its HTML."""
    response = await node.client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    return await response.text()


async def commit_hostile_record(node: Node) -> str:
    """Commit a business record with a memo that is HTML; return its id."""
    body = RecordBody(
        category="invoice",
        doc_hash=hashlib.sha256(b"hostile").digest(),
        amount=1_500_000,
        counterparty=address_of(HOUSEHOLD),
        memo=HOSTILE_MEMO,
    )
    tx_id = await node.submit_ok(encode_signed(BUSINESS, 1, body))
    node.produce_block()
    return tx_id


async def test_index_shows_status_blocks_validators_and_members(members_node: Node) -> None:
    html = await page(members_node, "/")
    assert "danang-integration" in html
    assert '<a href="/explorer/blocks/1">1</a>' in html
    assert "validator-0" in html
    assert text_address_of(HOUSEHOLD) in html
    assert "household" in html
    assert 'id="chart-tps"' in html
    assert '<script type="application/json" id="recent-blocks">[{' in html


async def test_index_of_an_empty_chain_says_so(node: Node) -> None:
    assert "No block yet." in await page(node, "/")


async def test_memos_are_escaped_on_every_page(members_node: Node) -> None:
    node = members_node
    tx_id = await commit_hostile_record(node)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34;"
    for path in (
        f"/explorer/txs/{tx_id}",
        "/explorer/blocks/2",
        f"/explorer/accounts/{text_address_of(HOUSEHOLD)}",
    ):
        html = await page(node, path)
        assert escaped in html, path
        assert "<script>alert" not in html, path


async def test_transaction_page_shows_its_block_and_a_checked_proof(members_node: Node) -> None:
    node = members_node
    tx_id = await commit_hostile_record(node)
    html = await page(node, f"/explorer/txs/{tx_id}")
    assert '<a id="tx-block" href="/explorer/blocks/2">2</a>' in html
    assert "The proof checks against this chain's genesis" in html
    assert f'href="/proofs/tx/{tx_id}"' in html


async def test_search_leads_to_block_transaction_record_and_account(members_node: Node) -> None:
    node = members_node
    record_id = await commit_hostile_record(node)
    household = text_address_of(HOUSEHOLD)
    expected = {
        "2": "/explorer/blocks/2",
        record_id: f"/explorer/txs/{record_id}",
        record_id.upper(): f"/explorer/txs/{record_id}",
        household: f"/explorer/accounts/{household}",
    }
    for query, target in expected.items():
        response = await node.client.get(
            "/explorer/search", params={"q": f" {query} "}, allow_redirects=False
        )
        assert response.status == 302, query
        assert response.headers["Location"] == target


async def test_search_for_nothing_known_is_a_404_page(members_node: Node) -> None:
    html = await page(members_node, "/explorer/search?q=<b>99</b>", status=404)
    assert "nothing on this chain matches &#39;&lt;b&gt;99&lt;/b&gt;&#39;" in html
    await page(members_node, "/explorer/search?q=99", status=404)
    await page(members_node, "/explorer/search?q=" + "ab" * 32, status=404)


async def test_unknown_block_and_account_are_404_pages(members_node: Node) -> None:
    await page(members_node, "/explorer/blocks/7", status=404)
    await page(members_node, "/explorer/accounts/dn1nope", status=404)
    await page(members_node, "/explorer/txs/zz", status=404)


async def test_the_script_and_style_are_served(node: Node) -> None:
    html = await page(node, "/")
    for name in ("explorer.js", "explorer.css"):
        start = html.index(f"/explorer/static/{name}")
        url = html[start : html.index('"', start)]
        response = await node.client.get(url)
        assert response.status == 200, url


async def test_a_pending_transaction_has_a_page_that_says_so(members_node: Node) -> None:
    body = RecordBody(
        category="invoice",
        doc_hash=hashlib.sha256(b"waiting").digest(),
        amount=None,
        counterparty=None,
        memo="waiting",
    )
    tx_id = await members_node.submit_ok(encode_signed(BUSINESS, 1, body))
    html = await page(members_node, f"/explorer/txs/{tx_id}")
    assert "Status: <strong>pending</strong>" in html


async def test_a_rotated_key_s_transaction_page_names_the_member_and_the_key(
    members_node: Node,
) -> None:
    node = members_node
    replacement = make_key(13)
    rotate = MemberAdmitBody(address_of(BUSINESS), "business", replacement.public_key)
    await node.submit_ok(encode_signed(REGISTRAR, 3, rotate))
    node.produce_block()
    body = RecordBody("invoice", hashlib.sha256(b"new key").digest(), memo="after a loss")
    tx_id = await node.submit_ok(encode_signed(replacement, 1, body))
    node.produce_block()
    html = await page(node, f"/explorer/txs/{tx_id}")
    member = text_address_of(BUSINESS)
    assert f'<a href="/explorer/accounts/{member}">{member}</a>' in html
    assert f'<dt>signing key</dt><dd class="mono">{text_address_of(replacement)}' in html
    # A member's own key: no separate line.
    admission = await page(node, "/explorer/blocks/1")
    assert "signing key" not in admission
