"""The HTTP side of a node's metrics: ``GET /metrics`` and the request middleware.

The registry and what it collects are node/metrics.py; this module adds what
only the API knows: an ASGI middleware that counts API requests by route
template, method and status and times them (on a 5xx it logs the request
id), a wrapper round the API's ``ClientError`` handler that counts refusals by
code, and the scrape route.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import ClientError
from node.metrics import NodeMetrics, Sources
from node.runtime import Node

log = logging.getLogger("comity.api.requests")


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
    metrics = NodeMetrics(
        Sources(
            node.driver,
            node.app,
            node.store,
            node.mempool,
            node.peers,
            node.peer_faults,
            sse_subscribers,
        )
    )
    node.add_commit_listener(metrics.on_commit)
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
