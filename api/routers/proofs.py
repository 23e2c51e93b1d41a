"""Consistency proofs between two sizes of the ledger log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import NodeDep, ReadAccess
from api.schemas import ConsistencyProof, errors
from node import queries

router = APIRouter(prefix="/v1/proofs", tags=["proofs"], dependencies=[ReadAccess])


@router.get(
    "/consistency",
    response_model=ConsistencyProof,
    summary="RFC 6962 consistency proof from size `first` to size `second`",
    responses=errors(400, 401, 404),
)
async def consistency(
    node: NodeDep, first: int = Query(ge=1), second: int = Query(ge=1)
) -> dict[str, Any]:
    return queries.consistency(node.store, first, second)
