"""Schemathesis hooks for the API run.

- How to send a msgpack body (POST /txs/batch).
- A 5xx the operation documents (GET /readiness's 503 when not ready, POST /txs's 503
  when the mempool is full, ...) is an answer, not a server error; its body is still
  checked against the documented schema.
- With DANANGCHAIN_SCHEMATHESIS_READER set to "<chain id> <seed hex>", every GET is a
  signed read of that member (an auditor: the private routes answer it).
- With DANANGCHAIN_SCHEMATHESIS_LOG set to a file, one JSON line per request
  (method, path template, path and query parameters, status) is appended to it, so the test can
  count the requests that reached ids known to the ledger.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import msgpack
import schemathesis
from schemathesis.core.failures import ServerError

LOG_VARIABLE = "DANANGCHAIN_SCHEMATHESIS_LOG"
READER_VARIABLE = "DANANGCHAIN_SCHEMATHESIS_READER"
_log_lock = threading.Lock()


def _as_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    return str(item).encode()


@schemathesis.serializer("application/msgpack")
def msgpack_serializer(context: Any, value: Any) -> bytes:
    """Send a generated array as a msgpack array of byte strings.

    Schemathesis 4 wants the body's bytes (it wraps them as the request's data itself);
    a {"data": ...} dict, as schemathesis 3 wanted, would be sent form-encoded.
    """
    items = value if isinstance(value, list) else [value]
    packed: bytes = msgpack.packb([_as_bytes(item) for item in items])
    return packed


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except a server error whose status the operation documents."""
    if not isinstance(failure, ServerError):
        return True
    documented = case.operation.definition.raw.get("responses", {})
    return str(response.status_code) not in documented


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Sign each GET as the member DANANGCHAIN_SCHEMATHESIS_READER names, over the path
    and query exactly as they will be sent."""
    reader = os.environ.get(READER_VARIABLE)
    if not reader or case.method.upper() != "GET":
        return
    import requests

    from danangchain import ed25519
    from danangchain.read_access import encode_authorization, sign_read

    chain_id, seed = reader.split()
    key = ed25519.signing_key_from_seed(bytes.fromhex(seed))
    sent = case.as_transport_kwargs(base_url="http://node")
    prepared = requests.Request("GET", sent["url"], params=sent.get("params")).prepare()
    path = prepared.path_url
    read = sign_read(key, chain_id, "GET", path, time.time_ns() // 1_000_000, os.urandom(16))
    case.headers = {**(case.headers or {}), "Authorization": encode_authorization(read)}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Note each request's operation, path parameters and status when asked to."""
    log_path = os.environ.get(LOG_VARIABLE)
    if not log_path:
        return
    line = {
        "method": case.method.upper(),
        "path": case.operation.path,
        "path_parameters": {
            name: str(value) for name, value in (case.path_parameters or {}).items()
        },
        "query": {name: str(value) for name, value in (case.query or {}).items()},
        "status": response.status_code,
    }
    with _log_lock, open(log_path, "a", encoding="utf-8") as log:
        log.write(json.dumps(line, sort_keys=True) + "\n")
