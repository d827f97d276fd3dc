"""Where a witness reads blocks: a node's export stream from the first block it lacks."""

from __future__ import annotations

import functools
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from danangchain import ed25519
from danangchain.errors import DecodeError
from danangchain.export import ExportReader
from danangchain.read_access import NONCE_SIZE, encode_authorization, sign_read

OpenFeed = Callable[[str, int], AbstractContextManager[ExportReader]]
READ_TIMEOUT_S = 30.0


class FeedError(Exception):
    """A source that cannot be read now (down, refusing, a broken stream): try again later."""


def make_node_feed(key: ed25519.SigningKey, chain_id: str) -> OpenFeed:
    """Return the feed of a witness that signs its reads with its key (the export is every
    member's data: nodes stream it to auditors and witnesses only)."""
    return functools.partial(open_node_feed, key=key, chain_id=chain_id)


@contextmanager
def open_node_feed(
    node_url: str, first_height: int, key: ed25519.SigningKey, chain_id: str
) -> Iterator[ExportReader]:
    """Stream a node's blocks from `first_height` to its tip (GET /chain/export?from=H)."""
    path = f"/chain/export?from={first_height}"
    url = node_url.rstrip("/") + path
    nonce = os.urandom(NONCE_SIZE)
    read = sign_read(key, chain_id, "GET", path, time.time_ns() // 1_000_000, nonce)
    request = urllib.request.Request(url, headers={"Authorization": encode_authorization(read)})
    # Straight to the node, as the CLI goes: no proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        response = opener.open(request, timeout=READ_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise FeedError(
            f"{node_url} answered {exc.code} to /chain/export{describe_refusal(exc)}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise FeedError(f"cannot reach {node_url}: {getattr(exc, 'reason', exc)}") from None
    with response:
        try:
            yield ExportReader(response.read, first_height)
        except (http.client.HTTPException, OSError) as exc:
            raise FeedError(
                f"the stream from {node_url} broke: {exc or type(exc).__name__}"
            ) from None
        except DecodeError as exc:
            if "truncated" in str(exc):  # the connection closed early
                raise FeedError(f"the stream from {node_url} broke: {exc}") from None
            raise


def describe_refusal(error: urllib.error.HTTPError) -> str:
    """Return ": why" for a refused read (an unknown key, not a witness), else nothing."""
    if error.code not in (401, 403):
        return ""
    try:
        reason = error.read(4096).decode("utf-8", "replace")
    except OSError:
        return ""
    return f": {reason}"
