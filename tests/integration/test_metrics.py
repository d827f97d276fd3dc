"""/metrics parsed by prometheus_client's own parser; /health and /readiness."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from danangchain.transaction import RecordBody
from node.http.health import compute_readiness

from .conftest import (
    BUSINESS,
    HOUSEHOLD,
    REGISTRAR,
    Node,
    StartNode,
    address_of,
    encode_signed,
)


def record_body(memo: str, counterparty: bytes | None = None) -> RecordBody:
    """Return an invoice record, naming a counterparty if given."""
    return RecordBody(
        category="invoice",
        doc_hash=hashlib.sha256(memo.encode()).digest(),
        amount=1000,
        counterparty=counterparty,
        memo=memo,
    )


async def scrape(node: Node) -> dict[str, Any]:
    """GET /metrics and return every sample by (name, sorted labels)."""
    response = await node.client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    samples: dict[Any, float] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Return one sample's value."""
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_parse_and_follow_commits(members_node: Node) -> None:
    node = members_node
    start = await scrape(node)
    for nonce in (1, 2, 3):
        await node.submit_ok(
            encode_signed(BUSINESS, nonce, record_body(f"invoice {nonce}", address_of(HOUSEHOLD)))
        )
    before = await scrape(node)
    signatures = "danangchain_signatures_verified_total"
    checked = value(before, signatures, kind="transaction", result="valid")
    assert checked == value(start, signatures, kind="transaction", result="valid") + 3
    assert value(before, "danangchain_height") == 1
    assert value(before, "danangchain_mempool_transactions") == 3
    node.produce_block()
    after = await scrape(node)
    assert value(after, "danangchain_height") == 2
    assert value(after, "danangchain_mempool_transactions") == 0
    # Block 1 (two admissions) and block 2 (three records), both seen by this node.
    assert value(after, "danangchain_blocks_committed_total") == 2
    assert value(after, "danangchain_transactions_committed_total") == 5
    assert value(after, "danangchain_commit_latency_seconds_count", source="client") == 5
    assert value(after, "danangchain_consensus_rounds_count") == 2
    assert value(after, "danangchain_consensus_rounds_sum") == 2  # solo blocks: round 0
    assert value(after, "danangchain_store_write_seconds_count") == 2
    # The three records were checked once, at admission; committing them checks none again.
    assert value(after, signatures, kind="transaction", result="valid") == checked
    assert value(after, "danangchain_peers_connected") == 0


async def test_metrics_export_the_ledger_counters_as_labelled_refusals(node: Node) -> None:
    node.ledger.counters["refused: bad signature"] = 4
    node.ledger.counters["evidence"] = 1
    samples = await scrape(node)
    reason = "refused: bad signature"
    assert value(samples, "danangchain_messages_refused_total", reason=reason) == 4
    assert value(samples, "danangchain_node_events_total", event="evidence") == 1
    assert ("danangchain_messages_refused_total", (("reason", "evidence"),)) not in samples


async def test_two_nodes_in_one_process_keep_separate_metrics(
    start_node: StartNode, tmp_path: Path
) -> None:
    first = await start_node(tmp_path / "a")
    second = await start_node(tmp_path / "b")
    await first.submit_ok(encode_signed(REGISTRAR, 1, record_body("only on the first")))
    first.produce_block()
    assert value(await scrape(first), "danangchain_height") == 1
    assert value(await scrape(second), "danangchain_height") == 0
    assert value(await scrape(second), "danangchain_blocks_committed_total") == 0


async def test_health_is_200(node: Node) -> None:
    assert await node.get_ok("/health") == {"status": "alive"}


async def test_readiness_of_a_node_without_peers_is_200(node: Node) -> None:
    document = await node.get_ok("/readiness")
    assert document["ready"] is True
    assert document["peers_configured"] == 0


async def test_readiness_wanting_peers_is_503_with_the_reason(node: Node) -> None:
    status, document = await node.get("/readiness?min_peers=1")
    assert status == 503
    assert document["ready"] is False
    assert "0 peers answer, at least 1 wanted" in document["reasons"]


async def test_readiness_refuses_a_bad_parameter(node: Node) -> None:
    status, document = await node.get("/readiness?max_blocks_behind=-1")
    assert status == 400
    assert document["error"] == "bad_query"


def test_readiness_counts_blocks_behind_the_highest_peer() -> None:
    assert compute_readiness(10, [10, 13], 2, 1) == (
        3,
        ["3 blocks behind the highest peer, at most 2"],
    )
    assert compute_readiness(10, [9, 12], 2, 2) == (2, [])
