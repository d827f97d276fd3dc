"""Prometheus metrics of one node, in a registry of its own (two nodes in one process
do not share any state).

Values that the node keeps anyway (height, mempool size, peers, the ledger's counters and
signature checks) are read when Prometheus scrapes; what happens over time (commits,
their latency, the store's write time) is observed as it happens: commits through the
chain feed, store writes and admissions through the ledger's typed events.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from node.chain.events import BlockCommitted, TxAdmitted
from node.chain.ledger import NodeLedger
from node.chain.signatures import KINDS, RESULTS
from node.http.chain_feed import CommittedBlock
from node.p2p.transport import PeerDirectory, PeerLink

MAX_TRACKED_SUBMISSIONS = 100_000
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROUND_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16)


class LedgerCollector(Collector):
    """Read the node's current numbers at scrape time."""

    def __init__(self, ledger: NodeLedger, metrics: NodeMetrics) -> None:
        self.ledger = ledger
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        tip = self.ledger.tip
        yield GaugeMetricFamily(
            "danangchain_height", "Height of the last committed block.", tip.height
        )
        yield GaugeMetricFamily(
            "danangchain_last_block_time_seconds",
            "Time of the last committed block (Unix seconds; 0 before the first block).",
            tip.time_ms / 1000 if tip.height else 0,
        )
        yield GaugeMetricFamily(
            "danangchain_mempool_transactions",
            "Transactions waiting in the mempool.",
            len(self.ledger.mempool),
        )
        peers = self.metrics.peer_links()
        yield GaugeMetricFamily(
            "danangchain_peers_connected",
            "Peers whose last exchange succeeded.",
            sum(1 for peer in peers if peer.connected),
        )
        yield GaugeMetricFamily("danangchain_peers_configured", "Peers in config.", len(peers))
        yield from self._counters()
        checked = self.ledger.signatures.checked
        signatures = CounterMetricFamily(
            "danangchain_signatures_verified",
            "Signatures this node checked, each once: transactions (from clients, peers and "
            "others' proposals), consensus votes and proposals, signed peer requests.",
            labels=["kind", "result"],
        )
        for kind in KINDS:
            for result in RESULTS:
                signatures.add_metric([kind, result], checked[kind, result])
        yield signatures

    def _counters(self) -> Iterator[Metric]:
        counters = dict(self.ledger.counters)
        refused = CounterMetricFamily(
            "danangchain_messages_refused",
            "Peer messages, requests and gossiped transactions refused, by reason.",
            labels=["reason"],
        )
        events = CounterMetricFamily(
            "danangchain_node_events",
            "Every counter the node keeps (refusals, evidence, send failures), by name.",
            labels=["event"],
        )
        for name, value in sorted(counters.items()):
            events.add_metric([name], value)
            if "refused" in name:
                refused.add_metric([name], value)
        yield refused
        yield events


class NodeMetrics:
    """One node's metrics: a registry, what is observed over time, and the scrape handler."""

    def __init__(self, ledger: NodeLedger, clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.clock = clock
        self.registry = CollectorRegistry()
        self.peers: PeerDirectory | None = None
        self.submitted: OrderedDict[bytes, tuple[float, str]] = OrderedDict()
        self.blocks = Counter(
            "danangchain_blocks_committed",
            "Blocks this node saw committed since it started.",
            registry=self.registry,
        )
        self.transactions = Counter(
            "danangchain_transactions_committed",
            "Transactions in the blocks this node saw committed since it started.",
            registry=self.registry,
        )
        self.rounds = Histogram(
            "danangchain_consensus_rounds",
            "Rounds each height took to commit (the certificate's round + 1).",
            buckets=ROUND_BUCKETS,
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "danangchain_commit_latency_seconds",
            "From a transaction's admission on this node to this node seeing it committed; "
            "source is client (the API) or peer (gossip).",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_writes = Histogram(
            "danangchain_store_write_seconds",
            "Time to write one committed block to LevelDB (one synced batch).",
            buckets=WRITE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(LedgerCollector(ledger, self))

    def peer_links(self) -> list[PeerLink]:
        """Return the consensus driver's peer links (none in an app without a driver)."""
        return [] if self.peers is None else list(self.peers.peers)

    # Observations

    def on_tx_admitted(self, event: TxAdmitted) -> None:
        """Remember when a transaction was admitted, to measure its commit latency."""
        source = "peer" if event.from_peer else "client"
        self.submitted[event.tx_id] = (self.clock(), source)
        while len(self.submitted) > MAX_TRACKED_SUBMISSIONS:
            self.submitted.popitem(last=False)

    def wants_transactions(self) -> bool:
        """Blocks need decoding only while submissions wait for their commit."""
        return bool(self.submitted)

    def on_block(self, committed: CommittedBlock) -> None:
        """Count a committed block and the latency of the transactions it holds."""
        summary = committed.summary
        self.blocks.inc()
        self.transactions.inc(summary.tx_count)
        if summary.round is not None:
            self.rounds.observe(summary.round + 1)
        for tx_id in committed.tx_ids:
            admitted = self.submitted.pop(tx_id, None)
            if admitted is not None:
                admitted_at, source = admitted
                latency = max(0.0, committed.seen_at - admitted_at)
                self.commit_latency.labels(source).observe(latency)

    def on_block_committed(self, event: BlockCommitted) -> None:
        """Observe how long the block's synced write took."""
        self.store_writes.observe(event.write_seconds)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        """GET /metrics: the Prometheus text format."""
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
