"""Shared dependencies of the routers: the node, the body read with a limit, and access.

Access: reads need a bearer token of any role unless the node's config has
``open_read`` (the devnet default); operator endpoints need an operator
token always. Writes are authorised by the record signature, not by tokens.
A missing, unknown, malformed or revoked token is the same 401, and a token
of the wrong role is 403, so a caller learns nothing else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.errors import Forbidden, TooLarge, Unauthorized
from node.runtime import Node
from node.tokens import TokenInfo, TokenStore

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
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> TokenInfo:
    tokens: TokenStore = request.app.state.tokens
    info = tokens.authenticate(credentials.credentials) if credentials is not None else None
    if info is None:
        raise Unauthorized("a valid bearer token is required", code="unauthorized")
    return info


async def require_reader(request: Request, node: NodeDep, credentials: Credentials) -> None:
    if not node.config.open_read:
        _authenticate(request, credentials)


async def require_operator(request: Request, credentials: Credentials) -> None:
    if _authenticate(request, credentials).role != "operator":
        raise Forbidden("this endpoint needs an operator token", code="forbidden")


ReadAccess = Depends(require_reader)
OperatorAccess = Depends(require_operator)
