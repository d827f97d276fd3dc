"""The client API: JSON over HTTP. Handlers are thin; errors are JSON with one clear message."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from danangchain import __version__
from danangchain.address import decode_address, encode_address
from danangchain.encoding import unpack
from danangchain.errors import AddressError, DanangChainError, DecodeError, InvalidTransaction
from danangchain.export import encode_block_record, encode_end_record, encode_export_header
from danangchain.proof import encode_proof_json
from danangchain.read_access import (
    AUTH_SCHEME,
    Reader,
    can_read_chain,
    get_record_parties,
    is_entitled,
    is_private,
)
from danangchain.rules import get_concerned_addresses, get_sender_address
from danangchain.sealing import MAX_ENVELOPE_SIZE, decode_gossip
from danangchain.state import StateView
from danangchain.transaction import MAX_TX_SIZE, Transaction
from node.chain.access_log import MAX_ACCESS_LIST
from node.chain.ledger import NodeLedger
from node.chain.mempool import MempoolFull
from node.chain.reads import StoreError
from node.http.access import READS, ReadAccess, RequestRefused
from node.http.health import parse_count
from node.http.operator import add_operator_routes
from node.http.views import (
    render_access_entry,
    render_block,
    render_evidence,
    render_key,
    render_member,
    render_node,
    render_pending_vote,
    render_record,
    render_transaction,
    render_validator,
)
from node.http.waiting import (
    MAX_WAIT_S,
    TICKS,
    CommitTicks,
    follow_commits,
    wait_until_final,
)

log = logging.getLogger("danangchain.api")

LEDGER = web.AppKey("ledger", NodeLedger)
NODE_INFO = web.AppKey("node_info", dict[str, str])
MAX_REQUEST_SIZE = 64 * 1024
EXPORT_CHUNK_SIZE = 256 * 1024
# A batch of record transactions (about 190 bytes each) fits in MAX_REQUEST_SIZE.
MAX_BATCH_TXS = 256
DEFAULT_EVIDENCE_LIMIT = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A client mistake, answered as a JSON error with a status and a stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def describe_refusal(error: InvalidTransaction) -> dict[str, Any]:
    """Return a refusal's code and message, with its template and values when it has them."""
    described: dict[str, Any] = {"error": error.code, "message": str(error)}
    if error.template is not None:
        described.update(template=error.template, values=error.params)
    return described


def json_error(http_status: int, code: str, message: str, **extra: Any) -> web.Response:
    """Return a JSON error response: a stable code and one human sentence."""
    return web.json_response({"error": code, "message": message, **extra}, status=http_status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error; never leak a traceback to a client."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.code, str(exc))
    except RequestRefused as exc:
        response = json_error(exc.status, exc.code, str(exc))
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = f'{AUTH_SCHEME} realm="members"'
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        code = codes.get(exc.status, exc.reason.lower().replace(" ", "_"))
        response = json_error(exc.status, code, exc.reason)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except StoreError as exc:
        log.error("store error: %s", exc)
        return json_error(500, "store_error", str(exc))
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_error(500, "internal_error", "internal error; see the node's log")


def parse_hash(text: str, what: str) -> bytes:
    """Parse a 32-byte hex id from a URL, or raise a 400."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ApiError(400, "bad_id", f"{what} must be 64 hex characters")
    return value


def parse_height(text: str) -> int:
    """Parse a block height from a URL, or raise a 400."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ApiError(400, "bad_height", "height must be a whole number or 'latest'")
    return int(text)


async def get_status(request: web.Request) -> web.Response:
    """GET /status: the chain and this node at a glance."""
    ledger = request.app[LEDGER]
    tip = ledger.tip
    validators = ledger.get_validator_set()
    info: dict[str, str] = request.app[NODE_INFO]
    return web.json_response(
        {
            "chain_id": ledger.chain_id,
            "height": tip.height,
            "latest_block_hash": tip.block_hash.hex(),
            "latest_block_time_ms": tip.time_ms,
            "state_root": tip.state_root.hex(),
            "genesis_hash": ledger.genesis.hash.hex(),
            "mempool_size": len(ledger.mempool),
            "validators": [v.public_key.hex() for v in validators.validators],
            "version": __version__,
            "counters": dict(ledger.counters),
            "audit_keys": [key.hex() for key in ledger.get_committed_view().get_audit_keys()],
            **info,
        }
    )


async def post_tx(request: web.Request) -> web.Response:
    """POST /txs: admit a signed transaction (raw canonical bytes, or JSON {"tx": hex}; a
    sealed record as JSON {"tx": hex, "sealed": hex}, its encrypted content beside it)."""
    body = await request.read()
    if len(body) > 2 * (MAX_TX_SIZE + MAX_ENVELOPE_SIZE) + 128:
        return json_error(413, "too_large", f"transaction is larger than {MAX_TX_SIZE} bytes")
    sealed: bytes | None = None
    if request.content_type == "application/json":
        try:
            document = json.loads(body)
            tx_bytes = bytes.fromhex(document["tx"])
            if document.get("sealed") is not None:
                sealed = bytes.fromhex(document["sealed"])
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return json_error(
                400, "bad_encoding", 'expected a JSON object {"tx": "<hex>", "sealed": "<hex>"}'
            )
    else:
        tx_bytes = body
    if len(tx_bytes) > MAX_TX_SIZE:
        return json_error(413, "too_large", f"transaction is larger than {MAX_TX_SIZE} bytes")
    if sealed is not None and len(sealed) > MAX_ENVELOPE_SIZE:
        return json_error(
            413, "too_large", f"sealed content is larger than {MAX_ENVELOPE_SIZE} bytes"
        )
    ledger = request.app[LEDGER]
    try:
        tx_id = ledger.submit(tx_bytes, sealed=sealed)
    except InvalidTransaction as exc:
        conflicts = ("duplicate", "duplicate_record")
        status = 409 if exc.code in conflicts else 413 if exc.code == "too_large" else 400
        return web.json_response(describe_refusal(exc), status=status)
    except MempoolFull as exc:
        return json_error(503, "mempool_full", str(exc))
    return web.json_response({"tx_id": tx_id.hex(), "status": "pending"}, status=202)


async def post_tx_batch(request: web.Request) -> web.Response:
    """POST /txs/batch: admit a msgpack array of signed transactions; answer each one."""
    try:
        batch = unpack(await request.read(), max_size=MAX_REQUEST_SIZE)
    except DecodeError as exc:
        return json_error(400, "bad_encoding", f"expected a msgpack array of transactions: {exc}")
    if not isinstance(batch, list) or not all(isinstance(item, bytes) for item in batch):
        return json_error(400, "bad_encoding", "expected a msgpack array of byte strings")
    if len(batch) > MAX_BATCH_TXS:
        return json_error(413, "too_large", f"a batch holds at most {MAX_BATCH_TXS} transactions")
    ledger = request.app[LEDGER]
    # An item is a transaction's bytes, or [bytes, sealed content] for a sealed record.
    items = [decode_gossip(item) for item in batch]
    results = await ledger.admit_batch(
        items, lambda tx_bytes, sealed: submit_one(ledger, tx_bytes, sealed)
    )
    admitted = sum(1 for result in results if result["status"] == "pending")
    return web.json_response({"admitted": admitted, "results": results})


def submit_one(ledger: NodeLedger, tx_bytes: bytes, sealed: bytes | None = None) -> dict[str, Any]:
    """Submit one transaction of a batch; return its result entry."""
    try:
        return {"tx_id": ledger.submit(tx_bytes, sealed=sealed).hex(), "status": "pending"}
    except InvalidTransaction as exc:
        return {"status": "refused", **describe_refusal(exc)}
    except MempoolFull as exc:
        return {"status": "refused", "error": "mempool_full", "message": str(exc)}


async def get_tx(request: web.Request) -> web.Response:
    """GET /txs/{id}[?wait=S]: pending, committed (height, index), rejected, or unknown;
    with `wait`, the answer comes once the transaction is final or S seconds have passed;
    the transaction itself, with its private fields only for the members it concerns
    and auditors (signed)."""
    ledger = request.app[LEDGER]
    tx_id = parse_hash(request.match_info["tx_id"], "transaction id")
    seconds = parse_wait(request.query.get("wait"))
    reader = request.app[READS].reader_of(request)
    status = await wait_until_final(ledger, request.app[TICKS], tx_id, seconds)
    committed = status.committed
    if committed is not None:
        view = ledger.get_committed_view()
        public = not may_read_tx(request, reader, view, committed.tx, "tx", tx_id.hex())
        return web.json_response(
            {
                "status": "committed",
                "height": committed.height,
                "index": committed.index,
                "block_hash": committed.block.hash.hex(),
                "tx": render_transaction(committed.tx, tx_id, view, public),
            }
        )
    if status.state == "pending":
        return web.json_response({"status": "pending", "tx_id": tx_id.hex()})
    if status.state == "rejected":
        return web.json_response(
            {"status": "rejected", "tx_id": tx_id.hex(), "reason": status.reason}
        )
    return json_error(404, "not_found", "no such transaction", status="unknown", tx_id=tx_id.hex())


def may_read_tx(
    request: web.Request,
    reader: Reader | None,
    view: StateView,
    tx: Transaction,
    route: str,
    target: str,
) -> bool:
    """Tell whether a reader sees a whole transaction (no: unsigned); a record's reader
    must be a member it concerns or an auditor (else 403), and the read is logged."""
    if reader is None:
        return False
    if is_private(tx):
        concerned = get_concerned_addresses(view, tx)
        request.app[READS].check_entitled(reader, concerned)
        request.app[READS].log_read(reader, concerned, route, target)
    return True


def parse_wait(text: str | None) -> float:
    """Return the seconds a request may wait (0 without `wait`); 400 if malformed."""
    if text is None:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0.0 <= seconds <= MAX_WAIT_S:  # also refuses nan
        raise ApiError(400, "bad_wait", f"wait must be a number of seconds, 0 to {MAX_WAIT_S:g}")
    return seconds


async def get_block(request: web.Request) -> web.Response:
    """GET /blocks/{height} or /blocks/latest: a block with its transactions; a record's
    private fields only for the members it concerns and auditors (signed)."""
    ledger = request.app[LEDGER]
    reader = request.app[READS].reader_of(request)
    text = request.match_info["height"]
    height = ledger.tip.height if text == "latest" else parse_height(text)
    if height == 0 and text == "latest":
        return json_error(404, "not_found", "no block has been committed yet")
    block = ledger.reads.block(height)
    if block is None:
        return json_error(
            404, "not_found", f"no block at height {height} (tip {ledger.tip.height})"
        )
    view = ledger.get_committed_view()
    shown: set[bytes] = set()

    def is_shown(tx: Transaction) -> bool:
        if reader is None or not is_private(tx):
            return reader is not None
        concerned = get_concerned_addresses(view, tx)
        if not is_entitled(reader, concerned):
            return False
        shown.update(concerned)
        return True

    answer = render_block(block, ledger.reads.certificate(height), view, is_shown)
    if reader is not None and shown:
        request.app[READS].log_read(reader, frozenset(shown), "block", str(height))
    return web.json_response(answer)


async def get_account(request: web.Request) -> web.Response:
    """GET /accounts/{address}: a member's role, nonces and records (signed: the member
    itself or an auditor)."""
    ledger = request.app[LEDGER]
    try:
        address = decode_address(request.match_info["address"])
    except AddressError as exc:
        return json_error(400, "bad_address", str(exc))
    access = request.app[READS]
    reader = access.require_reader(request)
    access.check_entitled(reader, frozenset({address}))
    member = ledger.get_committed_view().get_member(address)
    if member is None:
        return json_error(404, "not_found", f"{encode_address(address)} is not a member")
    account = render_member(address, member, ledger.get_pending_member(address))
    account["records"] = [rid.hex() for rid in ledger.reads.records_of(address)]
    encryption_key = ledger.get_committed_view().get_encryption_key(address)
    account["encryption_key"] = None if encryption_key is None else encryption_key.hex()
    access.log_read(reader, frozenset({address}), "account", encode_address(address))
    return web.json_response(account)


async def get_key(request: web.Request) -> web.Response:
    """GET /keys/{public_key}: the address a key signs for (its own, or a rotated member's),
    with what a client needs to sign its next transaction in the same answer: the chain
    id and, for a member, its role, revocation and next nonce (counting pending ones)."""
    ledger = request.app[LEDGER]
    public_key = parse_hash(request.match_info["public_key"], "public key")
    view = ledger.get_committed_view()
    address = get_sender_address(view, public_key)
    member = view.get_member(address)
    pending = None if member is None else ledger.get_pending_member(address)
    return web.json_response(render_key(public_key, address, ledger.chain_id, member, pending))


async def get_encryption_key(request: web.Request) -> web.Response:
    """GET /encryption-keys/{address}: the X25519 key a member's sealed records are
    encrypted to (a public key, open to anyone, as membership is), or null."""
    ledger = request.app[LEDGER]
    try:
        address = decode_address(request.match_info["address"])
    except AddressError as exc:
        return json_error(400, "bad_address", str(exc))
    view = ledger.get_committed_view()
    if view.get_member(address) is None:
        return json_error(404, "not_found", f"{encode_address(address)} is not a member")
    key = view.get_encryption_key(address)
    return web.json_response(
        {"address": encode_address(address), "encryption_key": None if key is None else key.hex()}
    )


async def get_validators(request: web.Request) -> web.Response:
    """GET /validators[?height=H]: the set that signs a height, and the votes pending."""
    ledger = request.app[LEDGER]
    text = request.query.get("height")
    height = ledger.tip.height + 1 if text is None else parse_height(text)
    try:
        validator_set = ledger.reads.validator_set_at(height)
    except ValueError as exc:
        raise ApiError(400, "bad_height", str(exc)) from None
    current = ledger.get_validator_set()
    pending = [
        render_pending_vote(value, current) for value in ledger.reads.pending_validator_votes()
    ]
    return web.json_response(
        {
            "height": height,
            "validators": [render_validator(v) for v in validator_set.validators],
            "total_power": validator_set.total_power,
            "quorum": validator_set.quorum,
            "pending_votes": pending,
        }
    )


async def get_nodes(request: web.Request) -> web.Response:
    """GET /nodes: the node registry at the tip (validators and admitted full nodes)."""
    ledger = request.app[LEDGER]
    nodes = [render_node(key, entry) for key, entry in ledger.reads.nodes()]
    return web.json_response({"height": ledger.tip.height, "count": len(nodes), "nodes": nodes})


async def get_record(request: web.Request) -> web.Response:
    """GET /records/{id}: a committed record and whether it was endorsed (signed: by its
    creator, its counterparty or an auditor)."""
    ledger = request.app[LEDGER]
    record_id = parse_hash(request.match_info["record_id"], "record id")
    access = request.app[READS]
    reader = access.require_reader(request)
    record = ledger.get_committed_view().get_record(record_id)
    if record is None:
        return json_error(404, "not_found", "no such record")
    parties = get_record_parties(record)
    access.check_entitled(reader, parties)
    amended_by = ledger.reads.amendments_of(record_id, record)
    access.log_read(reader, parties, "record", record_id.hex())
    envelope = ledger.get_sealed(record_id) if record.content_hash is not None else None
    return web.json_response(render_record(record_id, record, amended_by, envelope))


async def get_tx_proof(request: web.Request) -> web.Response:
    """GET /proofs/tx/{id}: the inclusion proof of a committed transaction (JSON); it holds
    the whole transaction, so a record's is signed: by a member it concerns or an auditor."""
    ledger = request.app[LEDGER]
    tx_id = parse_hash(request.match_info["tx_id"], "transaction id")
    reader = request.app[READS].reader_of(request)
    committed = ledger.reads.committed_tx(tx_id)
    if committed is None:
        pending = tx_id in ledger.mempool
        message = "the transaction is pending, not committed" if pending else "no such transaction"
        return json_error(404, "not_found", message, tx_id=tx_id.hex())
    view = ledger.get_committed_view()
    if is_private(committed.tx) and reader is None:
        raise request.app[READS].unsigned()
    may_read_tx(request, reader, view, committed.tx, "proof", tx_id.hex())
    proof = ledger.reads.prove(committed)
    return web.Response(text=encode_proof_json(proof), content_type="application/json")


async def get_evidence(request: web.Request) -> web.Response:
    """GET /evidence?limit=N: conflicting votes this node caught, oldest heights first."""
    ledger = request.app[LEDGER]
    try:
        limit = parse_count(request, "limit", DEFAULT_EVIDENCE_LIMIT)
    except ValueError as exc:
        return json_error(400, "bad_query", str(exc))
    kept = ledger.reads.evidence(limit)
    evidence = []
    for encoded in kept:
        try:
            evidence.append(render_evidence(encoded, ledger.chain_id))
        except DanangChainError as exc:
            raise StoreError(f"kept evidence does not decode: {exc}") from None
    return web.json_response({"count": len(evidence), "evidence": evidence})


async def get_chain_export(request: web.Request) -> web.StreamResponse:
    """GET /chain/export[?from=H]: the chain up to the current tip as an export stream, in
    chunks; from H, only blocks H.. follow the header (a follower's next blocks). Every
    member's data: signed by an auditor, a witness or a node's own key."""
    ledger = request.app[LEDGER]
    access = request.app[READS]
    reader = access.require_reader(request)
    if not can_read_chain(reader):
        raise RequestRefused(
            403,
            "not_allowed",
            "only auditors, witnesses and the nodes' own keys may export the whole chain",
        )
    tip = ledger.tip
    first = parse_height(request.query.get("from", "1"))
    if not 1 <= first <= tip.height + 1:
        raise ApiError(
            400, "bad_height", f"from must be between 1 and {tip.height + 1} (the tip + 1)"
        )
    if first <= tip.height:
        access.log_export(reader, first, tip.height)
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    chunk = bytearray(encode_export_header(ledger.genesis, tip.height))
    try:
        for height in range(first, tip.height + 1):
            chunk += encode_block_record(*ledger.reads.export_record(height))
            if len(chunk) >= EXPORT_CHUNK_SIZE:
                await response.write(bytes(chunk))
                chunk.clear()
        chunk += encode_end_record(tip)
        await response.write(bytes(chunk))
        await response.write_eof()
    except StoreError as exc:
        # The status line is sent: break the stream so the client sees an error, not an end.
        log.error("chain export stopped: %s", exc)
        if request.transport is not None:
            request.transport.close()
    except ConnectionResetError:
        log.info("chain export: the client went away")
    return response


async def get_access_log(request: web.Request) -> web.Response:
    """GET /access-log[?limit=N]: who read the signing member's data through this node,
    what and when, newest first (its own reads are not logged)."""
    ledger = request.app[LEDGER]
    reader = request.app[READS].require_reader(request)
    try:
        limit = parse_count(request, "limit", MAX_ACCESS_LIST)
    except ValueError as exc:
        return json_error(400, "bad_query", str(exc))
    entries = ledger.access_log.entries_of(reader.address, min(limit, MAX_ACCESS_LIST))
    return web.json_response(
        {
            "address": encode_address(reader.address),
            "count": len(entries),
            "entries": [render_access_entry(entry) for entry in entries],
        }
    )


def create_app(ledger: NodeLedger, node_info: dict[str, Any]) -> web.Application:
    """Build the client API application around a node's ledger."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_REQUEST_SIZE)
    app[LEDGER] = ledger
    app[NODE_INFO] = node_info
    app[READS] = ReadAccess(ledger)
    app.router.add_get("/status", get_status)
    app.router.add_post("/txs", post_tx)
    app.router.add_post("/txs/batch", post_tx_batch)
    app.router.add_get("/txs/{tx_id}", get_tx)
    app.router.add_get("/blocks/{height}", get_block)
    app.router.add_get("/accounts/{address}", get_account)
    app.router.add_get("/records/{record_id}", get_record)
    app.router.add_get("/validators", get_validators)
    app.router.add_get("/nodes", get_nodes)
    app.router.add_get("/keys/{public_key}", get_key)
    app.router.add_get("/encryption-keys/{address}", get_encryption_key)
    app.router.add_get("/proofs/tx/{tx_id}", get_tx_proof)
    app.router.add_get("/evidence", get_evidence)
    app.router.add_get("/chain/export", get_chain_export)
    app.router.add_get("/access-log", get_access_log)
    app[TICKS] = CommitTicks()
    app.cleanup_ctx.append(lambda app: follow_commits(app, ledger))
    add_operator_routes(app, ledger, node_info)
    return app
