"""Node status, health, readiness, and operator peer details."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import NodeDep, OperatorAccess, ReadAccess
from api.schemas import Readiness, errors
from node import queries

router = APIRouter(tags=["status"])


@router.get("/v1/status", summary="Chain and node status", dependencies=[ReadAccess])
async def status(node: NodeDep) -> dict[str, Any]:
    return node.status()


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: started, not syncing, and quorum-1 peers up",
    description="200 when ready, else 503 with the same body. A lone validator needs no peers.",
    responses={503: {"model": Readiness}},
)
async def readyz(node: NodeDep) -> JSONResponse:
    body = queries.readiness(
        node.status(),
        len(node.app.state.validators(node.app.height + 1)),
        started=node.started,
        failed=node.failed,
    )
    return JSONResponse(
        body,
        status_code=200 if body["ready"] else 503,
        headers=None if body["ready"] else {"Retry-After": "1"},
    )


@router.get(
    "/v1/peers",
    summary="Peer links in detail (operator token required)",
    dependencies=[OperatorAccess],
    responses=errors(401, 403),
)
async def peers(node: NodeDep) -> dict[str, Any]:
    return queries.peers_view(node.peers, node.config.state, node.peer_faults)
