"""Shared dependencies of the routers: the node, and the request body read with a limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.errors import TooLarge
from node.runtime import Node


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {declared} bytes is over the {limit}-byte limit",
                       field="body", code="body_too_large")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"request body is over the {limit}-byte limit", field="body",
                           code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


NodeDep = Annotated[Node, Depends(get_node)]
