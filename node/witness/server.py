"""A witness's HTTP API: its status and the checkpoints it cosigned, JSON; errors as
`{"error": code, "message": ...}` with a 4xx status, as the node's API answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from danangchain.checkpoint import Cosignature, encode_checkpoints_file, encode_cosignature_json
from node.witness.follower import Witness

log = logging.getLogger("danangchain.witness")

WITNESS = web.AppKey("witness", Witness)
MAX_LIST = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, code: str, message: str) -> web.Response:
    """Return a JSON error: a stable code and one sentence."""
    return web.json_response({"error": code, "message": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error; never leak a traceback to a client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        codes = {404: "not_found", 405: "method_not_allowed"}
        return json_error(exc.status, codes.get(exc.status, "bad_request"), exc.reason)
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_error(500, "internal_error", "internal error; see the witness's log")


def parse_number(text: str, what: str) -> int:
    """Parse a whole number from a URL, or answer 400."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise web.HTTPBadRequest(reason=f"{what} must be a whole number")
    return int(text)


def render(cosignature: Cosignature) -> web.Response:
    return web.json_response(encode_cosignature_json(cosignature))


async def get_status(request: web.Request) -> web.Response:
    """GET /status: height, halted, evidence, the latest checkpoint and the sources."""
    return web.json_response(request.app[WITNESS].status())


async def get_latest(request: web.Request) -> web.Response:
    """GET /checkpoints/latest: the highest checkpoint this witness cosigned."""
    latest = request.app[WITNESS].latest_checkpoint()
    if latest is None:
        return json_error(404, "not_found", "this witness has cosigned no checkpoint yet")
    return render(latest)


async def get_checkpoint(request: web.Request) -> web.Response:
    """GET /checkpoints/{height}: the checkpoint cosigned at exactly that height."""
    height = parse_number(request.match_info["height"], "height")
    cosignature = request.app[WITNESS].checkpoint_at(height)
    if cosignature is None:
        return json_error(404, "not_found", f"this witness cosigned no checkpoint at {height}")
    return render(cosignature)


async def list_checkpoints(request: web.Request) -> web.Response:
    """GET /checkpoints?from=H&limit=N: the checkpoints at or above H, lowest first (at
    most 1000), as a checkpoints file."""
    first = parse_number(request.query.get("from", "1"), "from")
    limit = parse_number(request.query.get("limit", str(MAX_LIST)), "limit")
    if not 1 <= limit <= MAX_LIST:
        raise web.HTTPBadRequest(reason=f"limit must be from 1 to {MAX_LIST}")
    found = request.app[WITNESS].checkpoints_from(first, limit)
    # The document of a checkpoints file: saved as it is, it serves `--checkpoints FILE`.
    document = json.loads(encode_checkpoints_file(found))
    return web.json_response({**document, "count": len(found)})


async def get_evidence(request: web.Request) -> web.Response:
    """GET /evidence: the two blocks of one height, if the chain contradicted a checkpoint."""
    evidence = request.app[WITNESS].status()["evidence"]
    if evidence is None:
        return json_error(404, "not_found", "no evidence: the chain contradicted no checkpoint")
    return web.json_response(evidence)


def create_witness_app(witness: Witness) -> web.Application:
    """Build the witness's API around its state."""
    app = web.Application(middlewares=[error_middleware], client_max_size=1024)
    app[WITNESS] = witness
    app.router.add_get("/status", get_status)
    app.router.add_get("/checkpoints", list_checkpoints)
    app.router.add_get("/checkpoints/latest", get_latest)
    app.router.add_get("/checkpoints/{height}", get_checkpoint)
    app.router.add_get("/evidence", get_evidence)
    return app


async def run_witness(
    witness: Witness, host: str, port: int, poll_seconds: float, stop: asyncio.Event
) -> None:
    """Serve the API and follow the sources until `stop` is set; checking runs in a thread
    so the API answers while a long catch-up is checked."""
    runner = web.AppRunner(create_witness_app(witness), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("witness %s serving on http://%s:%d", witness.key.public_key.hex(), host, port)
        while not stop.is_set():
            await asyncio.to_thread(witness.poll)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
    finally:
        await runner.cleanup()


def run_witness_until_signalled(
    witness: Witness, host: str, port: int, poll_seconds: float
) -> None:
    """Run a witness in the foreground until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def request_stop() -> None:
            stop.set()
            witness.stop_requested.set()  # a catch-up in its thread stops at the next block

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, request_stop)
        await run_witness(witness, host, port, poll_seconds, stop)

    asyncio.run(main())
    log.info("witness stopped")
