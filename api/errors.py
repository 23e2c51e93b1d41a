"""Map Comity's error tree to HTTP: ``{"error": {"code", "message", "field"?}}``.

Client errors keep their status and stable code; FastAPI's own validation
errors become 400/422 with the offending field named; anything else is a
genuine server fault: a 500 with a request id, logged with its traceback.
``RateLimited`` (429) is the API's own client error: a source or signer over
its write rate (api/ratelimit.py). It and ``Overloaded`` (503) carry
``Retry-After``. A 405 carries ``Allow`` with every method the path serves.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ledger.errors import ClientError, Overloaded, Unauthorized

log = logging.getLogger("comity.api")


class RateLimited(ClientError):
    """A client IP or a signer is over its write rate; retry after ``retry_after_s``."""

    status = 429
    default_code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: int = 1,
        field: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.retry_after_s = retry_after_s


def error_body(code: str, message: str, field: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return {"error": body}


#: The stable codes of parameters whose pattern the OpenAPI document states: the
#: same codes the node's own parsers use for them (docs/API.md, errors).
PATTERN_CODES = {
    "record_id": "bad_hex",
    "sha256": "bad_hex",
    "evidence_sha256": "bad_hex",
    "signer": "bad_hex",
    "cursor": "bad_cursor",
    "status": "bad_query",
    "clock": "bad_query",
    "group_by": "bad_query",
    "at": "bad_time",
    "from": "bad_time",
    "to": "bad_time",
    "from_time": "bad_time",
    "to_time": "bad_time",
    "state": "bad_state",
    "actor_state": "bad_state",
    "territorial_state": "bad_state",
}


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this path: routes are one per method, so the
    first route matching the path alone (what Starlette puts in ``Allow``) may not
    know them all. ``app.state.routes`` is the table ``create_app`` builds
    (api/openapi.py ``route_table``)."""
    path = scope.get("path", "")
    table = getattr(app.state, "routes", ())
    matches = [(static, m) for pattern, static, m in table if pattern.fullmatch(path)]
    # A static path names its own resource: /v1/records/batch is not a record id.
    if any(static for static, _ in matches):
        matches = [(static, m) for static, m in matches if static]
    return sorted({method for _, methods in matches for method in methods})


def method_not_allowed(allow: list[str]) -> JSONResponse:
    """405 with ``Allow`` listing what the target supports (RFC 9110 §15.5.6)."""
    return JSONResponse(
        error_body("method_not_allowed", "Method Not Allowed"),
        status_code=405,
        headers={"Allow": ", ".join(allow)},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientError)
    async def client_error(request: Request, exc: ClientError) -> JSONResponse:
        headers = {}
        if isinstance(exc, Overloaded | RateLimited):
            headers["Retry-After"] = str(exc.retry_after_s)
        elif isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"  # RFC 6750 §3
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        allow = allowed_methods(request.app, request.scope)
        if allow and request.method not in allow:  # GET /v1/records/batch: not a record id
            return method_not_allowed(allow)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body",)) or "body"
        code = "invalid_request"
        if first.get("type") == "string_pattern_mismatch":
            code = PATTERN_CODES.get(str(first.get("loc", ("",))[-1]), code)
        return JSONResponse(
            error_body(code, f"{where}: {first.get('msg')}", where), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found"}.get(exc.status_code, "http_error")
        if exc.status_code == 405:
            return method_not_allowed(allowed_methods(request.app, request.scope))
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:16]
        log.exception(
            "server fault on %s %s (request %s)", request.method, request.url.path, request_id
        )
        return JSONResponse(
            error_body("internal_error", f"internal error; quote request id {request_id}"),
            status_code=500,
            headers={"x-request-id": request_id},
        )
