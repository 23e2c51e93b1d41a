"""Prometheus metrics of one node: ``GET /metrics`` in the text exposition format.

Theory of operation
-------------------
Each node owns a ``CollectorRegistry`` (never the process-global one), so
several nodes in one test process keep separate numbers. Most values are read
from the node's own state at scrape time by ``NodeCollector``: height, round,
mempool, peer links, gossip bytes, engine rejections, block sync. That costs
nothing on the hot path; a scrape is a few dictionary reads. Only what cannot
be read later is recorded as it happens:

* a commit listener observes rounds per height (the certificate's round + 1)
  and the commit latency (from entering the height to its commit);
* the API's middleware (api/metrics.py) counts API requests by route template,
  method and status, and times them, and counts refusals by code
  (``bad_signature``, ``nonce_reused``, ...) in this registry.

The collector reads only the parts it reports on (driver, chain, store,
mempool, peer links, fault counter), each passed in; the HTTP side (the
middleware and ``GET /metrics``) is api/metrics.py.

Label values are bounded: routes are templates, never raw paths; peer-fault
reasons have digits masked and at most ``REASONS_MAX`` are exported.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger.block import CommitCertificate
from ledger.store import Store
from node.application import Application, Block
from node.driver import Driver
from node.mempool import Mempool
from node.peers import PeerSet

REASONS_MAX = 50
ROUND_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32)
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REQUEST_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60)


def _reason_label(reason: str) -> str:
    """Peer-fault texts hold sizes and heights: mask digits so labels stay few."""
    return re.sub(r"\d+", "N", reason)[:60]


@dataclass(frozen=True)
class Sources:
    """What the metrics read: the node's parts, each read at scrape time."""

    driver: Driver
    app: Application
    store: Store
    mempool: Mempool
    peers: PeerSet
    peer_faults: Counter[str]
    sse_subscribers: Callable[[], int] = lambda: 0


class NodeCollector(Collector):
    """Reads the node's state when Prometheus scrapes."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Metric]:
        node = self.sources
        driver = node.driver
        replica = driver.replica
        yield _gauge("comity_height", "Committed height of this node.", node.app.height)
        yield _gauge(
            "comity_round",
            "Consensus round at the height being decided.",
            replica.round if replica is not None else 0,
        )
        yield _counter(
            "comity_records_committed", "Records in the ledger log.", node.store.ledger_size
        )
        yield _gauge("comity_mempool_records", "Records waiting for a block.", len(node.mempool))
        yield _gauge(
            "comity_mempool_bytes", "Bytes of records waiting for a block.", node.mempool.bytes
        )
        yield _gauge(
            "comity_sse_subscribers", "Open event-stream subscriptions.", node.sse_subscribers()
        )
        yield _counter(
            "comity_blocks_committed", "Blocks committed since start.", driver.stats.commits
        )
        yield _counter(
            "comity_synced_blocks", "Blocks applied through block sync.", driver.stats.synced_blocks
        )
        yield _counter(
            "comity_invalid_blocks", "Proposed blocks found invalid.", driver.stats.invalid_blocks
        )
        yield from self._peers()
        yield self._rejections(replica.rejections if replica is not None else Counter())

    def _peers(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "comity_peer_up", "1 if the last request to the peer worked.", labels=["peer"]
        )
        height = GaugeMetricFamily(
            "comity_peer_height", "Height the peer last reported.", labels=["peer"]
        )
        lag = GaugeMetricFamily(
            "comity_peer_lag_blocks",
            "Peer height minus ours (negative: the peer is behind).",
            labels=["peer"],
        )
        sent = CounterMetricFamily(
            "comity_gossip_sent_bytes", "Bytes of P2P requests sent to the peer.", labels=["peer"]
        )
        dropped = CounterMetricFamily(
            "comity_peer_dropped_items",
            "Items dropped because the peer's queue was full.",
            labels=["peer"],
        )
        ours = self.sources.app.height
        for state, peer in sorted(self.sources.peers.peers.items()):
            up.add_metric([state], 1 if peer.stats.up else 0)
            height.add_metric([state], peer.stats.height)
            lag.add_metric([state], peer.stats.height - ours)
            sent.add_metric([state], peer.stats.sent_bytes)
            dropped.add_metric([state], peer.stats.dropped_items)
        return (up, height, lag, sent, dropped)

    def _rejections(self, engine: Counter[str]) -> Metric:
        family = CounterMetricFamily(
            "comity_rejections",
            "Inputs refused, by source (consensus engine, p2p) and "
            "reason: bad signatures, non-validators, stale or malformed messages.",
            labels=["source", "reason"],
        )
        for reason, count in sorted(engine.items()):
            family.add_metric(["consensus", reason], count)
        faults: Counter[str] = Counter()
        for reason, count in self.sources.peer_faults.items():
            faults[_reason_label(reason)] += count
        for reason, count in faults.most_common(REASONS_MAX):
            family.add_metric(["p2p", reason], count)
        return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class NodeMetrics:
    """The registry of one node and the few metrics recorded as events happen."""

    def __init__(self, sources: Sources) -> None:
        self.driver = sources.driver
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(NodeCollector(sources))
        self.rounds = Histogram(
            "comity_rounds_per_height",
            "Rounds a height took to commit.",
            buckets=ROUND_BUCKETS,
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "comity_commit_latency_seconds",
            "From entering a height to committing it.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.requests = PromCounter(
            "comity_api_requests",
            "API requests.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "comity_api_request_duration_seconds",
            "API request handling time.",
            ["route"],
            buckets=REQUEST_BUCKETS_S,
            registry=self.registry,
        )
        self.client_errors = PromCounter(
            "comity_api_client_errors",
            "API requests refused, by error code (bad_signature, nonce_reused, ...).",
            ["code"],
            registry=self.registry,
        )

    def on_commit(self, block: Block, certificate: CommitCertificate) -> None:
        """A commit listener (``Node.add_commit_listener``)."""
        driver = self.driver
        replica = driver.replica
        if replica is None or replica.height != block.height:
            return  # applied through block sync: this node did not decide it
        self.rounds.observe(certificate.round + 1)
        # The loop clock: the driver stamps the entry time with it.
        entered_s = driver.stats.entered_height_s
        if entered_s > 0:
            self.commit_latency.observe(max(0.0, asyncio.get_running_loop().time() - entered_s))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
