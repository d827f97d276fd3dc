"""The explorer's pages, rendered by a real LevelDB node: content, escaping, search."""

from __future__ import annotations

import hashlib

from danangchain.genesis import make_genesis
from danangchain.transaction import EndorseBody, MemberAdmitBody, RecordBody, ValidatorVoteBody
from danangchain.validators import Validator
from node.http.explorer import shorten

from .conftest import (
    BUSINESS,
    CHAIN_ID,
    GENESIS_TIME_MS,
    HOUSEHOLD,
    REGISTRAR,
    VALIDATOR,
    Node,
    StartNode,
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


async def test_no_page_shows_a_records_memo_amount_counterparty_or_document(
    members_node: Node,
) -> None:
    node = members_node
    tx_id = await commit_hostile_record(node)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34;"
    document = hashlib.sha256(b"hostile").hexdigest()
    for path in (
        "/",
        f"/explorer/txs/{tx_id}",
        "/explorer/blocks/2",
        f"/explorer/accounts/{text_address_of(HOUSEHOLD)}",
        f"/explorer/accounts/{text_address_of(BUSINESS)}",
    ):
        html = await page(node, path)
        for private in (escaped, "<script>alert", "1,500,000", "1500000", document):
            assert private not in html, (path, private)
    # The record's page names what is public: its category and status, not its counterparty.
    html = await page(node, f"/explorer/txs/{tx_id}")
    assert "invoice" in html and "not yet" in html
    assert text_address_of(HOUSEHOLD) not in html


async def test_transaction_page_shows_its_block_and_a_checked_proof(members_node: Node) -> None:
    node = members_node
    tx_id = await commit_hostile_record(node)
    html = await page(node, f"/explorer/txs/{tx_id}")
    assert '<a id="tx-block" href="/explorer/blocks/2">2</a>' in html
    assert "The proof checks against this chain's genesis" in html
    assert f"danangchain audit prove {tx_id} --from KEY" in html


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


def shortened(value: str, href: str | None = None) -> str:
    """Return the markup of a shortened id: head…tail shown, the whole value kept."""
    attributes = f'title="{value}" data-full="{value}">{value[:10]}…{value[-6:]}'
    if href is None:
        return f'<span class="hash" {attributes}</span>'
    return f'<a class="hash" href="{href}" {attributes}</a>'


def test_long_values_are_shortened_to_head_and_tail() -> None:
    assert shorten("ab" * 32) == "abababab" + "ab…" + "ababab"
    assert shorten("dn1short") == "dn1short"


async def test_validators_page_lists_the_set_and_the_pending_votes_escaped(
    start_node: StartNode,
) -> None:
    second = make_key(14)
    newcomer = make_key(15).public_key
    genesis = make_genesis(
        CHAIN_ID,
        GENESIS_TIME_MS,
        [Validator(VALIDATOR.public_key, "validator-0"), Validator(second.public_key, "<i>v1")],
        [(address_of(REGISTRAR), "registrar")],
    )
    node = await start_node(genesis=genesis)
    vote = ValidatorVoteBody("add", newcomer, '<b>new</b> & "co"', 1)
    await node.submit_ok(encode_signed(VALIDATOR, 1, vote))
    node.produce_block()
    html = await page(node, "/explorer/validators")
    validator = text_address_of(VALIDATOR)
    assert "<td>validator-0</td>" in html
    assert "<td>&lt;i&gt;v1</td>" in html
    assert shortened(validator, f"/explorer/accounts/{validator}") in html
    assert '<a href="/explorer/blocks/1">1</a>' in html  # validator-0 signed block 1
    # One vote of two, with the power that voted and the quorum it needs.
    assert "<td>&lt;b&gt;new&lt;/b&gt; &amp; &#34;co&#34;</td>" in html
    assert shortened(newcomer.hex()) in html
    assert '<td class="num">1 of 2</td>' in html
    assert html.count("<td>validator-0</td>") == 2  # in the set, and as the one voter
    assert "<b>new" not in html and "<i>v1" not in html
    assert 'href="/explorer/validators"' in await page(node, "/")


async def test_validators_page_without_votes_says_so(node: Node) -> None:
    html = await page(node, "/explorer/validators")
    assert "No vote pending." in html
    assert "quorum 1 of 1 voting power" in html


async def test_account_page_shows_the_status_of_each_record_and_no_amount(
    members_node: Node,
) -> None:
    node = members_node
    endorsed = await commit_hostile_record(node)
    await node.submit_ok(encode_signed(HOUSEHOLD, 1, EndorseBody(bytes.fromhex(endorsed))))
    doc = hashlib.sha256(b"cancelled").digest()
    cancelled = await node.submit_ok(
        encode_signed(BUSINESS, 2, RecordBody("invoice", doc, 42, address_of(HOUSEHOLD)))
    )
    awaiting = await node.submit_ok(
        encode_signed(BUSINESS, 3, RecordBody("payment", doc, None, address_of(HOUSEHOLD)))
    )
    node.produce_block()
    cancel = RecordBody(
        "invoice", doc, reference=bytes.fromhex(cancelled), reference_kind="cancels"
    )
    cancelling = await node.submit_ok(encode_signed(BUSINESS, 4, cancel))
    node.produce_block()
    html = await page(node, f"/explorer/accounts/{text_address_of(BUSINESS)}")
    rows = html.split("<tr>")[2:]
    expected = {
        endorsed: ("1,500,000", "endorsed at 3"),
        cancelled: ("42", "cancelled at 4"),
        awaiting: ("—", "awaiting endorsement"),
        cancelling: ("—", "recorded"),
    }
    assert len(rows) == len(expected)
    for record_id, (_amount, status) in expected.items():
        [row] = [r for r in rows if f'data-full="{record_id}"' in r]
        assert shortened(record_id, f"/explorer/txs/{record_id}") in row
        assert '<td class="num">' not in row, record_id
        assert f'<td class="status">{status}</td>' in row, record_id
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" not in html and "1,500,000" not in html


async def search(node: Node, query: str) -> tuple[int, str]:
    """Search the explorer; return the status and the redirect target or the page."""
    response = await node.client.get("/explorer/search", params={"q": query}, allow_redirects=False)
    if response.status == 302:
        return 302, response.headers["Location"]
    return response.status, await response.text()


async def test_search_by_part_of_a_recent_id_finds_it(members_node: Node) -> None:
    record_id = await commit_hostile_record(members_node)
    for query in (record_id[:8], record_id[:20].upper(), record_id[:63]):
        assert await search(members_node, query) == (302, f"/explorer/txs/{record_id}")


async def test_search_by_part_of_an_id_refuses_fewer_than_eight_digits(
    members_node: Node,
) -> None:
    record_id = await commit_hostile_record(members_node)
    status, html = await search(members_node, record_id[:7])
    assert status == 404
    assert f"&#39;{record_id[:7]}&#39; is too short: give at least 8 hex digits" in html


async def test_search_by_part_of_an_id_shared_by_two_lists_both(members_node: Node) -> None:
    node = members_node
    # Found once by trying memos: these two ids share their first 8 hex digits. The two
    # records cite different documents: the node refuses a member's second record of one.
    first = await node.submit_ok(
        encode_signed(
            BUSINESS,
            1,
            RecordBody("invoice", hashlib.sha256(b"ambiguous").digest(), memo="first 69562"),
        )
    )
    second = await node.submit_ok(
        encode_signed(
            BUSINESS,
            2,
            RecordBody(
                "invoice", hashlib.sha256(b"ambiguous, another").digest(), memo="second 7170"
            ),
        )
    )
    node.produce_block()
    assert first[:8] == second[:8] == "fce926f3" and first[8] != second[8]
    status, html = await search(node, "FCE926F3")
    assert status == 200
    assert "&#39;fce926f3&#39; is ambiguous: 2 recent transactions start with it" in html
    for tx_id in (first, second):
        assert f'<a href="/explorer/txs/{tx_id}">{tx_id}</a>' in html
    assert await search(node, first[:9]) == (302, f"/explorer/txs/{first}")


async def test_search_by_part_of_an_id_not_among_recent_blocks_says_so(
    members_node: Node,
) -> None:
    status, html = await search(members_node, "<b>0123456789")
    assert status == 404 and "&lt;b&gt;0123456789" in html and "<b>0" not in html
    status, html = await search(members_node, "0123456789abcdef")
    assert status == 404
    assert "no transaction in the latest 1 block(s) has an id starting with" in html
