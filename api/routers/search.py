"""Search committed records by one indexed key, optionally within a commit-time range."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import NodeDep, ReadAccess
from api.schemas import SearchPage, errors
from ledger.store import SEARCH_LIMIT_MAX
from node import queries

router = APIRouter(tags=["search"], dependencies=[ReadAccess])


@router.get(
    "/v1/search",
    response_model=SearchPage,
    summary="Records matching exactly one key, in commit order",
    description="Give exactly one of the key filters. `from_time`/`to_time` bound the "
    "commit time of the block (RFC 3339 UTC). Pass `next_cursor` back as "
    "`cursor` for the next page; it is null on the last page.",
    responses=errors(400, 401),
)
async def search(
    node: NodeDep,
    case_ref: str | None = Query(None, max_length=128),
    evidence_sha256: str | None = Query(None, max_length=64),
    actor_state: str | None = Query(None, max_length=2),
    territorial_state: str | None = Query(None, max_length=2),
    type: str | None = Query(None, max_length=64),
    signer: str | None = Query(None, max_length=64),
    from_time: str | None = Query(None, examples=["2026-11-22T00:00:00Z"]),
    to_time: str | None = Query(None, examples=["2026-11-23T00:00:00Z"]),
    cursor: str | None = Query(None, max_length=20),
    limit: int = Query(100, ge=1, le=SEARCH_LIMIT_MAX),
) -> dict[str, Any]:
    given = {
        "case_ref": case_ref,
        "evidence_sha256": evidence_sha256,
        "actor_state": actor_state,
        "territorial_state": territorial_state,
        "type": type,
        "signer": signer,
    }
    filters = {k: v for k, v in given.items() if v is not None}
    return queries.search(
        node.app, filters, from_time=from_time, to_time=to_time, cursor=cursor, limit=limit
    )
