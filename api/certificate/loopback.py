"""The judge's certificate served over HTTP, built as ``comity case certificate --node`` builds it.

``GET /v1/cases/{case_ref}/certificate`` must show exactly what the CLI's ``--node``
mode shows: the case as the node's views give it to the caller's token, with its
checks ``not_run`` (reading views verifies nothing) and the content pinned by the
SHA-256 of the model. So the route does not read the store itself: it runs the
CLI's own builder (``api.certificate.source.model_from_node``) against the same app,
through ``httpx.ASGITransport``, with the caller's ``Authorization`` header. Every
view then applies its own access rules (private bodies, the access log) as it does
for any client, and a change to a view reaches the certificate and the CLI alike.

The builder is synchronous, so it runs in a worker thread; each of its requests is
handed back to the event loop (``run_coroutine_threadsafe``) and waited on for at
most ``REQUEST_TIMEOUT_S``. The builder reads at most ``TIMELINE_ENTRIES_MAX``
entries and ``EVIDENCE_HASHES_MAX`` hashes, so the work per certificate is bounded, and
at most ``CERTIFICATES_AT_ONCE_MAX`` are built at once per app (rendering a PDF takes a
core for a second or more): one more is 503 ``too_many_certificates`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
from fastapi import FastAPI

from api.certificate.render import render_pdf
from api.certificate.source import model_from_node
from api.cli.certificate import views_sha256
from api.cli.client import NodeClient
from ledger.errors import NotFound, Overloaded

REQUEST_TIMEOUT_S = 30.0
CERTIFICATES_AT_ONCE_MAX = 2
SOURCE = "node {base}, served by GET /v1/cases/{{case_ref}}/certificate: no bundle given, the hash pins the content of this report"


class LoopbackClient:
    """``api.cli.client.NodeClient``'s reads, answered by the app itself on ``loop``."""

    def __init__(
        self, app: FastAPI, loop: asyncio.AbstractEventLoop, authorization: str | None
    ) -> None:
        headers = {"authorization": authorization} if authorization else {}
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://certificate.loopback",
            headers=headers,
            timeout=REQUEST_TIMEOUT_S,
        )
        self.loop = loop

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        future = asyncio.run_coroutine_threadsafe(self.http.get(path, params=params), self.loop)
        return NodeClient._json(future.result(timeout=REQUEST_TIMEOUT_S))

    def status(self) -> dict[str, Any]:
        return self._get("/v1/status", {})

    def members(self) -> dict[str, Any]:
        return self._get("/v1/members", {})

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self._get(path, params)


async def certificate_pdf(
    app: FastAPI, authorization: str | None, case_ref: str, lang: str, base: str
) -> bytes:
    """The PDF certificate of ``case_ref`` as the caller's token sees it, in ``lang``.

    ``NotFound`` (``case_not_found``) when the token may see no record of the case;
    ``Overloaded`` when ``CERTIFICATES_AT_ONCE_MAX`` are being built already."""
    busy: int = getattr(app.state, "certificates_busy", 0)
    if busy >= CERTIFICATES_AT_ONCE_MAX:
        raise Overloaded(
            f"{busy} certificates are being built; retry shortly",
            retry_after_s=2,
            code="too_many_certificates",
        )
    app.state.certificates_busy = busy + 1
    try:
        return await _build(app, authorization, case_ref, lang, base)
    finally:
        app.state.certificates_busy -= 1


async def _build(
    app: FastAPI, authorization: str | None, case_ref: str, lang: str, base: str
) -> bytes:
    client = LoopbackClient(app, asyncio.get_running_loop(), authorization)
    try:
        model = await asyncio.to_thread(
            model_from_node, client, case_ref, "", source=SOURCE.format(base=base)
        )
    finally:
        await client.http.aclose()
    if not model.timeline:
        raise NotFound(
            f"no committed record of case {case_ref} that this caller may see",
            field="case_ref",
            code="case_not_found",
        )
    model = replace(model, bundle_sha256=views_sha256(model))
    return await asyncio.to_thread(render_pdf, model, lang)
