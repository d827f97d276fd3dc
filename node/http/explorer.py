"""The explorer: read-only HTML pages for operators, auditors and members.

Pages are rendered on the server from Jinja2 templates with autoescaping, so every
string that comes from the chain (memos are user input) reaches the browser as text.
A strict Content-Security-Policy allows only the explorer's own script file: even a
missed escape could not run an inline script. The one script draws the live chart,
prepends new blocks from the /events websocket and copies shortened ids whole; every
page works without it. Tables show long ids as head…tail, the whole value in the title.
"""

from __future__ import annotations

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
from danangchain.transaction import RecordBody, SealedRecordBody
from node.chain.reads import CommittedTx
from node.http.chain_feed import ChainFeed
from node.http.events import FEED
from node.http.explorer_search import LATEST_BLOCKS, resolve_search
from node.http.views import render_pending_vote, render_transaction

HERE = Path(__file__).parent
TEMPLATES = web.AppKey("explorer_templates", jinja2.Environment)
NODE_NAME = web.AppKey("explorer_node_name", str)
MAX_MEMBERS = 500
MAX_RECORDS = 200
CHART_WINDOW_MS = 10 * 60 * 1000
SHORT_HEAD, SHORT_TAIL = 10, 6
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


def describe_record_status(record: Record, amended: bool = False) -> str:
    """Return where a record stands: endorsed, cancelled, amended, awaiting or recorded."""
    said = []
    if record.endorsed_height is not None:
        said.append(f"endorsed at {record.endorsed_height}")
    if record.cancelled_height is not None:
        said.append(f"cancelled at {record.cancelled_height}")
    if amended:
        said.append("amended")
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
    latest = list(reversed(feed.latest_summaries(LATEST_BLOCKS)))
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
        render_transaction(tx, None, view, public=True) | {"index": index}
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
        tx=render_transaction(tx, tx_id, view, public=True),
        is_record=isinstance(tx.body, RecordBody | SealedRecordBody),
        record=record,
        amended_by=[a.hex() for a in ledger.reads.amendments_of(tx_id, record)] if record else [],
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
    found = []
    for record_id in ledger.reads.records_of(address, limit=MAX_RECORDS):
        record = view.get_record(record_id)
        if record is not None:
            found.append((record_id, record))
    # Only a record's creator amends it: its amendments are among this page's records.
    amended = {r.reference for _, r in found if r.reference_kind == "amends"}
    records = [_describe_record(rid, record, rid in amended) for rid, record in found]
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


def _describe_record(record_id: bytes, record: Record, amended: bool) -> dict[str, Any]:
    """Return what an account page shows of one record."""
    creator, status = encode_address(record.creator), describe_record_status(record, amended)
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
