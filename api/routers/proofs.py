"""Consistency proofs between two sizes of the ledger log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import NodeDep, ReadAccess
from api.schemas import MAX_SAFE_INT, ConsistencyProof, errors
from ledger.errors import NotFound
from node import queries

router = APIRouter(prefix="/v1/proofs", tags=["proofs"], dependencies=[ReadAccess])


@router.get(
    "/consistency",
    response_model=ConsistencyProof,
    summary="RFC 6962 consistency proof from size `first` to size `second`",
    responses=errors(400, 404),
)
async def consistency(
    node: NodeDep,
    first: int = Query(ge=1, le=MAX_SAFE_INT),
    second: int = Query(ge=1, le=MAX_SAFE_INT),
) -> dict[str, Any]:
    if first > second:  # no log grows from a larger size to a smaller one
        raise NotFound(
            f"no consistency proof from size {first} to the smaller {second}",
            field="first",
            code="bad_range",
        )
    return queries.consistency(node.store, first, second)
