"""Shared dependencies of the routers: the node, the body read with a limit, and access.

Access: reads need a bearer token of any role unless the node's config has
``open_read`` (the devnet default); operator endpoints need an operator
token always. Writes are authorised by the record signature, not by tokens.
A missing, unknown, malformed or revoked token is the same 401, and a token
of the wrong role is 403, so a caller learns nothing else.

Private details (sealed details, private bodies) follow the need-to-know rule
of ``node/tokens.py``: ``BodyReaderToken`` checks the token, its role and its
state before the record is looked up (401 ``token_required``, 403
``role_not_allowed`` / ``state_not_allowed``); once the record's case is
known, the route calls ``AccessLog.authorize`` on ``AccessLogDep`` (403
``case_not_allowed``, logged) and logs the read with ``AccessLog.append``.
One ``AccessLog`` per app, signed with the node key.

Routers mark read routes with ``ReadAccess``; ``read_access`` is what the app
puts in its place when it is built (api/openapi.py): nothing on an open node,
a bearer-token check on a closed one. So the OpenAPI document declares the
security that applies as configured, and a route used outside ``create_app``
still checks ``open_read`` at request time.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Security, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.schemas import CURSOR, HEX64, STATE, UTC_TIME
from ledger.errors import Forbidden, TooLarge, Unauthorized
from node.access_log import AccessLog, open_access_log
from node.runtime import Node
from node.tokens import TokenInfo, TokenStore, check_body_reader

bearer = HTTPBearer(
    auto_error=False,
    description="API token: `Authorization: Bearer cmt_...` (see `comity token create`)",
)


async def get_node(request: Request) -> Node:
    # ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a
    # thread hop (and GIL hand-over) on every request for one attribute read.
    node: Node = request.app.state.node
    return node


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"request body of {declared} bytes is over the {limit}-byte limit",
            field="body",
            code="body_too_large",
        )
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise TooLarge(
                f"request body is over the {limit}-byte limit", field="body", code="body_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


NodeDep = Annotated[Node, Depends(get_node)]
#: A record id in a path: the SHA-256 of the record's leaf.
RecordId = Annotated[str, Path(pattern=HEX64, description="SHA-256 of the leaf, 64 lowercase hex")]
#: A page cursor in a query: the ``next_cursor`` of the previous page.
Cursor = Annotated[
    str | None, Query(pattern=CURSOR, description="`next_cursor` of the previous page")
]
#: An optional state code in a query (ISO 3166-1 alpha-2).
StateCode = Annotated[str | None, Query(pattern=STATE, examples=["TH"])]


def utc_time(example: str | None = None, *, alias: str | None = None) -> Any:
    """An optional RFC 3339 UTC time in a query (``Z``, at most microseconds)."""
    return Query(
        None,
        alias=alias,
        pattern=UTC_TIME,
        json_schema_extra={"format": "date-time"},
        examples=[example] if example else None,
    )


#: An evidence hash in a path.
Sha256 = Annotated[str, Path(pattern=HEX64, description="SHA-256, 64 lowercase hex")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> TokenInfo:
    tokens: TokenStore = request.app.state.tokens
    info = tokens.authenticate(credentials.credentials) if credentials is not None else None
    if info is None:
        raise Unauthorized("a valid bearer token is required", code="unauthorized")
    return info


async def reads_as_configured(request: Request, node: NodeDep, credentials: Credentials) -> None:
    """The ``ReadAccess`` marker: checks ``open_read`` per request until the app swaps it."""
    if not node.config.open_read:
        _authenticate(request, credentials)


async def require_reader(request: Request, credentials: Credentials) -> None:
    """Reads on a closed node (``open_read = false``): a valid token of any role."""
    _authenticate(request, credentials)


def read_access(open_read: bool) -> list[params.Depends]:
    """The dependencies that replace ``ReadAccess`` in an app of this read mode."""
    return [] if open_read else [Depends(require_reader)]


async def require_operator(request: Request, credentials: Credentials) -> None:
    if _authenticate(request, credentials).role != "operator":
        raise Forbidden("this endpoint needs an operator token", code="forbidden")


ReadAccess = Depends(reads_as_configured)
OperatorAccess = Depends(require_operator)


async def optional_token(request: Request, credentials: Credentials) -> TokenInfo | None:
    """The live token the request carries, or None (missing, unknown or revoked)."""
    tokens: TokenStore = request.app.state.tokens
    return tokens.authenticate(credentials.credentials) if credentials is not None else None


async def body_reader_token(
    node: NodeDep, token: Annotated[TokenInfo | None, Depends(optional_token)]
) -> TokenInfo:
    """A token that may read private details of this node's state (its case comes later)."""
    return check_body_reader(token, state=node.config.state)


async def get_access_log(request: Request, node: NodeDep) -> AccessLog:
    """The node's access log, one per app, opened on first use and signed by the node key."""
    access_log = getattr(request.app.state, "access_log", None)
    if not isinstance(access_log, AccessLog):
        access_log = open_access_log(node.config.data_dir, node.key)
        request.app.state.access_log = access_log
    return access_log


#: A token allowed to read private details here; every route using it declares bearer auth.
BodyReaderToken = Annotated[TokenInfo, Depends(body_reader_token)]
AccessLogDep = Annotated[AccessLog, Depends(get_access_log)]
