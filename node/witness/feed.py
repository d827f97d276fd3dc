"""Where a witness reads blocks: a node's export stream from the first block it lacks."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from danangchain.errors import DecodeError
from danangchain.export import ExportReader

OpenFeed = Callable[[str, int], AbstractContextManager[ExportReader]]
READ_TIMEOUT_S = 30.0


class FeedError(Exception):
    """A source that cannot be read now (down, refusing, a broken stream): try again later."""


@contextmanager
def open_node_feed(node_url: str, first_height: int) -> Iterator[ExportReader]:
    """Stream a node's blocks from `first_height` to its tip (GET /chain/export?from=H)."""
    url = f"{node_url.rstrip('/')}/chain/export?from={first_height}"
    # Straight to the node, as the CLI goes: no proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        response = opener.open(url, timeout=READ_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise FeedError(f"{node_url} answered {exc.code} to /chain/export") from None
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
