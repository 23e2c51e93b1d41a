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
* an ASGI middleware counts API requests by route template, method and status,
  and times them; on a 5xx it logs the request id;
* a wrapper round the API's ``ClientError`` handler counts refusals by code
  (``bad_signature``, ``nonce_reused``, ...).

Label values are bounded: routes are templates, never raw paths; peer-fault
reasons have digits masked and at most ``REASONS_MAX`` are exported.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.block import CommitCertificate
from ledger.errors import ClientError

if TYPE_CHECKING:
    from node.application import Block
    from node.runtime import Node

log = logging.getLogger("comity.api.requests")

REASONS_MAX = 50
ROUND_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32)
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REQUEST_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60)


def _reason_label(reason: str) -> str:
    """Peer-fault texts hold sizes and heights: mask digits so labels stay few."""
    return re.sub(r"\d+", "N", reason)[:60]


class NodeCollector(Collector):
    """Reads the node's state when Prometheus scrapes."""

    def __init__(self, node: Node, sse_subscribers: Callable[[], int]) -> None:
        self.node = node
        self.sse_subscribers = sse_subscribers

    def collect(self) -> Iterable[Metric]:
        node = self.node
        driver = node.driver
        replica = driver.replica if driver is not None else None
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
            "comity_sse_subscribers", "Open event-stream subscriptions.", self.sse_subscribers()
        )
        if driver is not None:
            yield _counter(
                "comity_blocks_committed", "Blocks committed since start.", driver.stats.commits
            )
            yield _counter(
                "comity_synced_blocks",
                "Blocks applied through block sync.",
                driver.stats.synced_blocks,
            )
            yield _counter(
                "comity_invalid_blocks",
                "Proposed blocks found invalid.",
                driver.stats.invalid_blocks,
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
        ours = self.node.app.height
        peers = self.node.peers.peers if self.node.peers is not None else {}
        for state, peer in sorted(peers.items()):
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
        for reason, count in self.node.peer_faults.items():
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

    def __init__(self, node: Node, sse_subscribers: Callable[[], int] = lambda: 0) -> None:
        self.node = node
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(NodeCollector(node, sse_subscribers))
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
        node.add_commit_listener(self.on_commit)

    def on_commit(self, block: Block, certificate: CommitCertificate) -> None:
        driver = self.node.driver
        replica = driver.replica if driver is not None else None
        if replica is None or replica.height != block.height:
            return  # applied through block sync: this node did not decide it
        self.rounds.observe(certificate.round + 1)
        # The loop clock: the driver stamps the entry time with it.
        entered_s = driver.stats.entered_height_s
        if entered_s > 0:
            self.commit_latency.observe(max(0.0, asyncio.get_running_loop().time() - entered_s))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer SSE streams)."""

    def __init__(self, app: ASGIApp, metrics: NodeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = _request_id(scope)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 500:
                    headers = list(message.get("headers", []))
                    if not any(k.lower() == b"x-request-id" for k, _ in headers):
                        headers.append((b"x-request-id", request_id.encode()))
                        message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, status, time.perf_counter() - started, request_id)

    def _record(self, scope: Scope, status: int, elapsed_s: float, request_id: str) -> None:
        route = getattr(scope.get("route"), "path", "<unmatched>")
        self.metrics.requests.labels(route, scope["method"], str(status)).inc()
        self.metrics.request_seconds.labels(route).observe(elapsed_s)
        if status >= 500 and route != "/readyz":  # readyz answers 503 by design
            log.warning(
                "%s %s answered %d (request %s)",
                scope["method"],
                route,
                status,
                request_id,
                extra={"request_id": request_id, "status": status, "route": route},
            )


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == b"x-request-id" and 0 < len(value) <= 64:
            return str(value.decode("latin-1"))
    return uuid.uuid4().hex[:16]


def install_metrics(
    app: FastAPI, node: Node, *, sse_subscribers: Callable[[], int], dependencies: list[Any]
) -> NodeMetrics:
    """Add ``GET /metrics``, the request middleware and the client-error counter."""
    metrics = NodeMetrics(node, sse_subscribers)
    app.state.metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
    handlers: MutableMapping[Any, Any] = app.exception_handlers
    original = handlers.get(ClientError)
    if original is not None:

        async def counting(request: Request, exc: Exception) -> Response:
            if isinstance(exc, ClientError):
                metrics.client_errors.labels(exc.code).inc()
            response: Response = await original(request, exc)
            return response

        handlers[ClientError] = counting

    async def scrape() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(
        "/metrics",
        scrape,
        methods=["GET"],
        dependencies=dependencies,
        tags=["status"],
        summary="Prometheus metrics (reader access)",
        include_in_schema=False,
    )
    return metrics
