"""The act catalogue (JSON Schemas) and the view of one act with its answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import NodeDep, ReadAccess, RecordId
from api.schemas import errors
from ledger.acts import json_schemas
from node import evidence

router = APIRouter(tags=["acts"], dependencies=[ReadAccess])


@router.get(
    "/v1/schemas",
    summary="JSON Schema of every act type (schema comity/1)",
    description="One JSON Schema per act type, keyed by type name; see docs/ACTS.md "
    "for the rules that need the chain (refs, answers, custody).",
)
async def schemas() -> dict[str, Any]:
    return json_schemas()


@router.get(
    "/v1/acts/{record_id}",
    summary="A committed act with its answers",
    description="The act, its position, every sovereignty_response and mla_response "
    "that names it, and each territorial state's latest sovereignty "
    "answer (`pending` if none). The same on every node.",
    responses=errors(400, 404),
)
async def act(record_id: RecordId, node: NodeDep) -> dict[str, Any]:
    return evidence.act_view(evidence.view_of(node.app), record_id)
