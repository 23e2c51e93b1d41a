"""Statistics for central authorities: time to first and final answer, and backlog.

docs/STATISTICS.md defines every figure; ``node/stats.py`` computes them.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from api.deps import ReadAccess, utc_time
from api.routers.private import PartyView
from api.schemas import errors
from node import clock, queries, stats

router = APIRouter(tags=["cases"], dependencies=[ReadAccess])

_DIMENSION = "(" + "|".join(stats.DIMENSIONS) + ")"
GROUP_BY_PATTERN = f"^{_DIMENSION}(,{_DIMENSION}){{0,{len(stats.DIMENSIONS) - 1}}}$"


@router.get(
    "/v1/stats",
    summary="Time to first and final answer, and backlog, by requested state, instrument and type",
    description="Over the requests committed in [`from`, `to`) (block time) as of `at` "
    "(default: now): per requested state owing an answer, the time from the request's "
    "block to its first answer and to its first final answer (median, nearest-rank p90 "
    "and mean, in hours) and the backlog without a final answer, overall and per group "
    "of `group_by` (comma-separated `state`, `instrument`, `type`; default all three). "
    "`format=csv` gives text/csv (RFC 4180) with fixed columns. A private act counts "
    "only for a caller that may read its content. docs/STATISTICS.md.",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **errors(400, 422)},
)
async def get_stats(
    view: PartyView,
    from_time: str | None = utc_time("2026-01-01T00:00:00Z", alias="from"),
    to_time: str | None = utc_time("2027-01-01T00:00:00Z", alias="to"),
    at: str | None = utc_time("2026-12-01T00:00:00Z"),
    group_by: str | None = Query(
        None, max_length=40, pattern=GROUP_BY_PATTERN, examples=["state,instrument,type"]
    ),
    format: Literal["json", "csv"] = Query("json"),
) -> Any:
    result = stats.statistics(
        view,
        queries.query_time(at, "query.at") if at else clock.utcnow(),
        start=queries.query_time(from_time, "query.from") if from_time else None,
        end=queries.query_time(to_time, "query.to") if to_time else None,
        group_by=stats.parse_group_by(group_by),
    )
    if format == "csv":
        return PlainTextResponse(stats.statistics_csv(result), media_type="text/csv")
    return result
