"""The explorer: read-only HTML pages for operators, auditors and members.

Pages are rendered on the server from Jinja2 templates with autoescaping, so every
string that comes from the chain (memos are user input) reaches the browser as text.
A strict Content-Security-Policy allows only the explorer's own script file: even a
missed escape could not run an inline script. The one script draws the live chart,
prepends new blocks from the /events websocket and copies shortened ids whole; every
page works without it. Tables show long ids as head…tail, the whole value in the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from danangchain import __version__
from danangchain.address import compute_address, decode_address, encode_address
from danangchain.errors import AddressError, DanangChainError
from danangchain.proof import check_inclusion_proof
from danangchain.state import Record
from danangchain.transaction import RecordBody, compute_tx_id
from node.chain.reads import CommittedTx
from node.http.chain_feed import BlockSummary, ChainFeed, summarise
from node.http.events import FEED
from node.http.views import render_pending_vote, render_transaction

HERE = Path(__file__).parent
TEMPLATES = web.AppKey("explorer_templates", jinja2.Environment)
NODE_NAME = web.AppKey("explorer_node_name", str)
LATEST_BLOCKS = 20
MAX_MEMBERS = 500
MAX_RECORDS = 200
CHART_WINDOW_MS = 10 * 60 * 1000
SHORT_HEAD, SHORT_TAIL = 10, 6
# A search by part of an id looks only at the transactions of the latest blocks the front
# page lists, newest first, and stops once it has this many: bounded work for any query.
MIN_PREFIX = 8
MAX_PREFIX_SCAN = 2000
MAX_CHOICES = 10
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def add_explorer_routes(app: web.Application, node_name: str = "") -> None:
    """Add the explorer's pages and its static files."""
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[TEMPLATES].filters["when"] = format_time
    app[TEMPLATES].filters["shorten"] = shorten
    app[NODE_NAME] = node_name
    app.router.add_get("/", page_index)
    app.router.add_get("/explorer/search", page_search)
    app.router.add_get("/explorer/blocks/{height}", page_block)
    app.router.add_get("/explorer/txs/{tx_id}", page_tx)
    app.router.add_get("/explorer/accounts/{address}", page_account)
    app.router.add_get("/explorer/validators", page_validators)
    app.router.add_static(
        "/explorer/static", HERE / "static", name="explorer_static", append_version=True
    )


def format_time(time_ms: int | None) -> str:
    """Return a block time as UTC text."""
    if time_ms is None:
        return "—"
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def shorten(text: str) -> str:
    """Return a long id or address as its head and tail, for display; short text as is."""
    if len(text) <= SHORT_HEAD + SHORT_TAIL + 1:
        return text
    return f"{text[:SHORT_HEAD]}…{text[-SHORT_TAIL:]}"


def describe_record_status(record: Record) -> str:
    """Return where a record stands: endorsed, cancelled, awaiting or simply recorded."""
    said = []
    if record.endorsed_height is not None:
        said.append(f"endorsed at {record.endorsed_height}")
    if record.cancelled_height is not None:
        said.append(f"cancelled at {record.cancelled_height}")
    if said:
        return ", ".join(said)
    return "awaiting endorsement" if record.counterparty is not None else "recorded"


def render_page(
    request: web.Request, template: str, status: int = 200, **values: Any
) -> web.Response:
    """Render a template with what every page shows, under the security headers."""
    feed = request.app[FEED]
    static = request.app.router["explorer_static"]
    text = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            chain_id=feed.ledger.chain_id,
            node_name=request.app[NODE_NAME],
            height=feed.ledger.tip.height,
            version=__version__,
            static_url=lambda name: str(static.url_for(filename=name)),
            **values,
        )
    )
    return web.Response(
        text=text, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def not_found(request: web.Request, message: str) -> web.Response:
    """Render the page that says what was not found."""
    return render_page(request, "not_found.html", status=404, message=message)


def proposer_names(feed: ChainFeed) -> dict[bytes, str]:
    """Return the names of the current validators by public key."""
    return {v.public_key: v.name for v in feed.ledger.get_validator_set().validators}


# Pages


async def page_index(request: web.Request) -> web.Response:
    """GET /: status, live chart, latest blocks, validators and members."""
    feed = request.app[FEED]
    feed.catch_up()
    ledger = feed.ledger
    latest = list(reversed(_latest_summaries(feed, LATEST_BLOCKS)))
    validator_set = ledger.get_validator_set()
    validators = _describe_validators(feed)
    members = _list_members(feed)
    newest = feed.recent[-1].time_ms if feed.recent else 0
    chart = [
        {"height": s.height, "time_ms": s.time_ms, "tx_count": s.tx_count}
        for s in feed.recent
        if s.time_ms >= newest - CHART_WINDOW_MS
    ]
    return render_page(
        request,
        "index.html",
        tip=ledger.tip,
        mempool_size=len(ledger.mempool),
        latest=latest,
        names=proposer_names(feed),
        validators=validators,
        quorum=validator_set.quorum,
        total_power=validator_set.total_power,
        members=members[:MAX_MEMBERS],
        member_count=len(members),
        chart=chart,
    )


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    """Where a search leads, or why it leads nowhere (with the ids it could mean)."""

    target: str | None = None
    problem: str = ""
    choices: tuple[str, ...] = ()


async def page_search(request: web.Request) -> web.Response:
    """GET /explorer/search?q=: go to the block, transaction, record or account asked for."""
    feed = request.app[FEED]
    query = request.query.get("q", "").strip()
    answer = resolve_search(feed, query)
    if answer.target is not None:
        raise web.HTTPFound(answer.target)
    return render_page(
        request,
        "search.html",
        status=200 if answer.choices else 404,
        message=answer.problem,
        choices=answer.choices,
    )


def resolve_search(feed: ChainFeed, query: str) -> SearchAnswer:
    """Return where a search text leads: a height, an address, an id or part of one."""
    ledger = feed.ledger
    if not query:
        return SearchAnswer(problem="type something")
    nothing = SearchAnswer(problem=f"nothing on this chain matches {query!r}")
    if query.isascii() and query.isdigit() and len(query) <= 19:
        height = int(query)
        if 1 <= height <= ledger.tip.height:
            return SearchAnswer(f"/explorer/blocks/{height}")
        if len(query) < MIN_PREFIX:
            return nothing
    if query.lower().startswith("dn1"):
        try:
            return SearchAnswer(f"/explorer/accounts/{encode_address(decode_address(query))}")
        except AddressError:
            return nothing
    if not is_hex(query):
        return nothing
    if len(query) == 64:
        # A record's id is the id of the transaction that made it: both lead to that page.
        known = ledger.reads.is_known_tx(bytes.fromhex(query))
        return SearchAnswer(f"/explorer/txs/{query.lower()}") if known else nothing
    return search_id_prefix(feed, query.lower())


def is_hex(text: str) -> bool:
    """Tell whether a text is made only of hexadecimal digits."""
    return text.isascii() and all(c in "0123456789abcdefABCDEF" for c in text)


def search_id_prefix(feed: ChainFeed, prefix: str) -> SearchAnswer:
    """Find the one recent transaction whose id starts with a hex prefix, or say why not."""
    if len(prefix) < MIN_PREFIX:
        return SearchAnswer(
            problem=f"{prefix!r} is too short: give at least {MIN_PREFIX} hex digits of an id"
        )
    if len(prefix) > 64:
        return SearchAnswer(problem=f"{prefix!r} is longer than an id (64 hex digits)")
    recent, blocks = recent_tx_ids(feed)
    found = [tx_id for tx_id in recent if tx_id.startswith(prefix)]
    if len(found) == 1:
        return SearchAnswer(f"/explorer/txs/{found[0]}")
    if found:
        return SearchAnswer(
            problem=f"{prefix!r} is ambiguous: {len(found)} recent transactions start with it",
            choices=tuple(found[:MAX_CHOICES]),
        )
    return SearchAnswer(
        problem=f"no transaction in the latest {blocks} block(s) has an id starting with "
        f"{prefix!r}; give the whole id of an older one"
    )


def recent_tx_ids(feed: ChainFeed) -> tuple[list[str], int]:
    """Return the ids of the latest blocks' transactions, newest first, and how many
    blocks they span: the blocks the front page lists, until the bound is passed."""
    ids: list[str] = []
    latest = _latest_summaries(feed, LATEST_BLOCKS)
    for looked, summary in enumerate(reversed(latest)):
        if len(ids) >= MAX_PREFIX_SCAN:
            return ids, looked
        block = feed.ledger.reads.block(summary.height) if summary.tx_count else None
        if block is not None:
            ids.extend(compute_tx_id(raw).hex() for raw in reversed(block.tx_bytes))
    return ids, len(latest)


async def page_block(request: web.Request) -> web.Response:
    """GET /explorer/blocks/{height}: a block's header, certificate and transactions."""
    feed = request.app[FEED]
    ledger = feed.ledger
    text = request.match_info["height"]
    height = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else 0
    block = ledger.reads.block(height)
    if block is None:
        return not_found(request, f"no block at height {text} (the tip is {ledger.tip.height})")
    certificate = ledger.reads.certificate(height)
    view = ledger.get_committed_view()
    txs = [
        render_transaction(tx, None, view) | {"index": index}
        for index, tx in enumerate(block.transactions)
    ]
    return render_page(
        request,
        "block.html",
        block=block,
        block_hash=block.hash.hex(),
        certificate=certificate,
        names=proposer_names(feed),
        txs=txs,
    )


async def page_tx(request: web.Request) -> web.Response:
    """GET /explorer/txs/{id}: a transaction, its record, and its Merkle inclusion proof."""
    feed = request.app[FEED]
    ledger = feed.ledger
    text = request.match_info["tx_id"]
    try:
        tx_id = bytes.fromhex(text)
    except ValueError:
        tx_id = b""
    if len(tx_id) != 32:
        return not_found(request, f"no transaction {text}")
    status = ledger.reads.tx_status(tx_id)
    committed = status.committed
    if committed is None:
        if status.state == "unknown":
            return not_found(request, f"no transaction {text}")
        reason = status.reason or ""
        return render_page(
            request, "tx_waiting.html", tx_id=text, state=status.state, reason=reason
        )
    block, index, tx = committed.block, committed.index, committed.tx
    view = ledger.get_committed_view()
    record = view.get_record(tx_id)
    return render_page(
        request,
        "tx.html",
        tx=render_transaction(tx, tx_id, view),
        is_record=isinstance(tx.body, RecordBody),
        record=record,
        counterparty=_address_text(record.counterparty) if record else None,
        tx_height=block.height,
        index=index,
        block_hash=block.hash.hex(),
        block_time=block.header.time_ms,
        proof=_describe_proof(feed, committed),
    )


async def page_account(request: web.Request) -> web.Response:
    """GET /explorer/accounts/{address}: a member's role and records."""
    feed = request.app[FEED]
    ledger = feed.ledger
    text = request.match_info["address"]
    try:
        address = decode_address(text)
    except AddressError as exc:
        return not_found(request, f"{text!r} is not an address: {exc}")
    view = ledger.get_committed_view()
    member = view.get_member(address)
    if member is None:
        return not_found(request, f"{encode_address(address)} is not a member")
    records = []
    for record_id in ledger.reads.records_of(address, limit=MAX_RECORDS):
        record = view.get_record(record_id)
        if record is not None:
            records.append(_describe_record(record_id, record))
    return render_page(
        request,
        "account.html",
        address=encode_address(address),
        member=member,
        records=records,
    )


async def page_validators(request: web.Request) -> web.Response:
    """GET /explorer/validators: the set that signs the next height and the votes pending."""
    feed = request.app[FEED]
    feed.catch_up()
    ledger = feed.ledger
    current = ledger.get_validator_set()
    names = proposer_names(feed)
    votes = []
    for value in ledger.reads.pending_validator_votes():
        vote = render_pending_vote(value, current)
        voters = [names.get(bytes.fromhex(v), v) for v in vote["voters"]]
        votes.append(vote | {"voter_names": voters})
    return render_page(
        request,
        "validators.html",
        validators=_describe_validators(feed),
        quorum=current.quorum,
        total_power=current.total_power,
        votes=votes,
    )


# Helpers


def _latest_summaries(feed: ChainFeed, count: int) -> list[BlockSummary]:
    """Return the summaries of the last `count` blocks, oldest first."""
    tip = feed.ledger.tip.height
    known = {s.height: s for s in feed.recent}
    summaries = []
    for height in range(max(1, tip - count + 1), tip + 1):
        summary = known.get(height)
        if summary is None:
            header = feed.ledger.reads.header(height)
            if header is None:
                continue
            summary = summarise(header, feed.ledger.reads.certificate(height))
        summaries.append(summary)
    return summaries


def _describe_record(record_id: bytes, record: Record) -> dict[str, Any]:
    """Return what an account page shows of one record."""
    creator, status = encode_address(record.creator), describe_record_status(record)
    return {"id": record_id.hex(), "record": record, "creator": creator, "status": status}


def _describe_validators(feed: ChainFeed) -> list[dict[str, Any]]:
    """Return the validators that sign the next height, with the last height each signed."""
    return [
        {
            "name": v.name,
            "address": encode_address(compute_address(v.public_key)),
            "public_key": v.public_key.hex(),
            "power": v.power,
            "last_signed": feed.last_signed.get(v.public_key),
        }
        for v in feed.ledger.get_validator_set().validators
    ]


def _list_members(feed: ChainFeed) -> list[dict[str, Any]]:
    """Return every member with its role, by address."""
    return [
        {"address": encode_address(address), "member": member}
        for address, member in feed.ledger.reads.members()
    ]


def _address_text(address: bytes | None) -> str | None:
    return None if address is None else encode_address(address)


def _describe_proof(feed: ChainFeed, committed: CommittedTx) -> dict[str, Any]:
    """Make the transaction's inclusion proof and check it against this node's genesis."""
    genesis = feed.ledger.genesis
    block, certificate = committed.block, committed.certificate
    proof = feed.ledger.reads.prove(committed)
    described: dict[str, Any] = {
        "tx_root": block.header.tx_root.hex(),
        "tx_count": block.header.tx_count,
        "path": [node.hex() for node in proof.merkle_path],
        "signers": [key.hex() for key, _ in certificate.signatures],
        "round": certificate.round,
        "genesis_hash": genesis.hash.hex(),
    }
    try:
        proven = check_inclusion_proof(proof, genesis.hash)
    except DanangChainError as exc:
        described.update(valid=False, problem=str(exc))
    else:
        described.update(
            valid=True, signed_power=proven.signed_power, total_power=proven.total_power
        )
    return described
