"""Sovereignty: foreign acts on this node's territory, and a report by state.

docs/DOMAIN.md ("The proposal"): a state can "clearly see whether evidence that
foreign investigators collected on its territory infringed its sovereignty".
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from api.deps import Cursor, NodeDep, ReadAccess, StateCode, utc_time
from api.routers.private import PartyView
from api.schemas import errors
from ledger.records import check_state_code
from node import evidence

router = APIRouter(prefix="/v1/sovereignty", tags=["sovereignty"], dependencies=[ReadAccess])


@router.get(
    "/notices",
    summary="Acts of foreign states on this node's territory",
    description="Every committed act naming this node's state in "
    "`territorial_states`, by another state, oldest first, with this "
    "state's answer (`pending` until a sovereignty_response).",
    responses=errors(400),
)
async def notices(
    node: NodeDep,
    view: PartyView,
    status: Literal["pending", "answered"] | None = Query(None),
    cursor: Cursor = None,
    limit: int = Query(100, ge=1, le=evidence.PAGE_MAX),
) -> dict[str, Any]:
    return evidence.notices(
        view,
        node.config.state,
        status=status,
        after_leaf=evidence.parse_cursor(cursor),
        limit=limit,
    )


@router.get(
    "/report",
    summary="Foreign acts on a state's territory, counted",
    description="Counts by acting state, type and the territorial state's latest "
    "answer, over acts whose occurred_at (`time=occurred`, the default) "
    "or block time (`time=committed`) is in [from, to). "
    "`format=csv` gives text/csv with columns "
    "actor_state,type,response,count.",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **errors(400, 422)},
)
async def report(
    node: NodeDep,
    view: PartyView,
    state: StateCode = None,
    from_time: str | None = utc_time("2026-01-01T00:00:00Z", alias="from"),
    to_time: str | None = utc_time(alias="to"),
    time: Literal["occurred", "committed"] = Query("occurred"),
    format: Literal["json", "csv"] = Query("json"),
) -> Any:
    target = check_state_code(state or node.config.state, "state")
    result = evidence.sovereignty_report(
        view, target, from_time=from_time, to_time=to_time, time_field=time
    )
    if format == "csv":
        return PlainTextResponse(evidence.report_csv(result), media_type="text/csv")
    return result
