"""Validator sets by height (to check commit certificates offline).

Each set comes with ``since_height`` and ``changes``: the governance records
(proposal, deciding vote) that made it, so a verifier can follow every change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import NodeDep, ReadAccess
from api.schemas import ValidatorSet, errors
from node import queries

router = APIRouter(tags=["validators"], dependencies=[ReadAccess])


@router.get(
    "/v1/validators",
    response_model=ValidatorSet,
    summary="The validator set of a height (default: the next height)",
    responses=errors(400, 401, 404),
)
async def validators(node: NodeDep, height: int | None = Query(None, ge=1)) -> dict[str, Any]:
    view = queries.validators_view(node.app, height)
    return {**view, **queries.set_origin(node.app.state, view["height"])}
