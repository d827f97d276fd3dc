"""Schemathesis hooks for the API run: how to send a msgpack body (POST /txs/batch)."""

from __future__ import annotations

from typing import Any

import msgpack
import schemathesis


def _as_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    return str(item).encode()


@schemathesis.serializer("application/msgpack")
def msgpack_serializer(context: Any, value: Any) -> dict[str, Any]:
    """Send a generated array as a msgpack array of byte strings."""
    items = value if isinstance(value, list) else [value]
    return {"data": msgpack.packb([_as_bytes(item) for item in items])}
