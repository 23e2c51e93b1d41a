"""Node status and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import NodeDep

router = APIRouter(tags=["status"])


@router.get("/v1/status", summary="Chain and node status")
async def status(node: NodeDep) -> dict[str, Any]:
    return node.status()


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
