"""The explorer's search box: a height, an address, a whole id, or part of one.

A search by part of an id looks only at the transactions of the latest blocks the front
page lists, newest first, and stops once it has MAX_PREFIX_SCAN of them: bounded work
for any query.
"""

from __future__ import annotations

from dataclasses import dataclass

from danangchain.address import decode_address, encode_address
from danangchain.errors import AddressError
from danangchain.transaction import compute_tx_id
from node.http.chain_feed import ChainFeed

LATEST_BLOCKS = 20
MIN_PREFIX = 8
MAX_PREFIX_SCAN = 2000
MAX_CHOICES = 10


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    """Where a search leads, or why it leads nowhere (with the ids it could mean)."""

    target: str | None = None
    problem: str = ""
    choices: tuple[str, ...] = ()


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
    latest = feed.latest_summaries(LATEST_BLOCKS)
    for looked, summary in enumerate(reversed(latest)):
        if len(ids) >= MAX_PREFIX_SCAN:
            return ids, looked
        block = feed.ledger.reads.block(summary.height) if summary.tx_count else None
        if block is not None:
            ids.extend(compute_tx_id(raw).hex() for raw in reversed(block.tx_bytes))
    return ids, len(latest)
