"""The act catalogue (JSON Schemas) and the view of one act with its answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import NodeDep, ReadAccess, RecordId
from api.routers.private import PartyView
from api.schemas import errors
from ledger.acts import json_schemas
from ledger.acts_fields import CATALOGUE_LATEST
from ledger.acts_versions import VERSIONS, activation_param
from node import evidence
from node.state import ChainState

router = APIRouter(tags=["acts"], dependencies=[ReadAccess])


@router.get(
    "/v1/schemas",
    summary="JSON Schema of every act type, per catalogue version (schema comity/1)",
    description="One JSON Schema per act type, keyed by type name, for catalogue "
    "`version` (default: the version the next block's acts follow on this chain). "
    "`versions` lists every version with the height it applies from on this chain "
    "(null: not voted in). See docs/ACTS.md for the rules that need the chain (refs, "
    "answers, custody) and for what each version adds.",
    responses=errors(400),
)
async def schemas(
    node: NodeDep,
    version: Annotated[
        int | None, Query(ge=1, le=CATALOGUE_LATEST, description="catalogue version")
    ] = None,
) -> dict[str, Any]:
    state = node.app.state
    chosen = node.app.catalogue_version() if version is None else version
    return {
        **json_schemas(chosen),
        "versions": [{"version": v, "from_height": _from_height(state, v)} for v in VERSIONS],
    }


def _from_height(state: ChainState, version: int) -> int | None:
    name = activation_param(version)
    return 1 if name is None else state.param(name)


@router.get(
    "/v1/acts/{record_id}",
    summary="A committed act with its answers",
    description="The act, its position, every answer that names it (`sovereignty_response` "
    "and the answer types of its type, docs/ACTS.md §16) with its status and whether it is "
    "final, its `lifecycle` (phase and the latest status of each answering state; null for a "
    "type nothing answers) and each territorial state's latest sovereignty answer (`pending` "
    "if none). A private act shows its content and answers to a bearer token that may read "
    "its body (each read access-logged), else its header only (lifecycle null).",
    responses=errors(400, 404),
)
async def act(record_id: RecordId, view: PartyView) -> dict[str, Any]:
    return evidence.act_view(view, record_id)
