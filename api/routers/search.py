"""Search committed records by one indexed key, optionally within a commit-time range.

"Exactly one key" is a rule across query parameters, which OpenAPI cannot state
of separate parameters; so the document describes the keys as one exploded
form object (``?case_ref=X`` is the object ``{"case_ref": "X"}``) with exactly
one property. The handler still reads them as plain query parameters, each
checked against the same constraints (``KEYS``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import Cursor, NodeDep, ReadAccess, utc_time
from api.routers.private import PartyView
from api.schemas import HEX64, RECORD_TYPE, STATE, SearchPage, errors
from ledger.store import SEARCH_LIMIT_MAX
from node import queries

router = APIRouter(tags=["search"], dependencies=[ReadAccess])

#: The key filters and their constraints, as JSON Schema string keywords.
KEYS: dict[str, dict[str, Any]] = {
    "case_ref": {"maxLength": 128},
    "evidence_sha256": {"pattern": HEX64},
    "actor_state": {"pattern": STATE},
    "territorial_state": {"pattern": STATE},
    "type": {"pattern": RECORD_TYPE},
    "signer": {"pattern": HEX64},
}
_KEY_PARAMETER = {
    "name": "key",
    "in": "query",
    "required": True,
    "style": "form",
    "explode": True,
    "description": "Exactly one key filter, as its own query parameter: "
    + ", ".join(f"`{name}`" for name in KEYS),
    "schema": {
        "type": "object",
        "properties": {name: {"type": "string", **rules} for name, rules in KEYS.items()},
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "examples": [{"case_ref": "FR-2026-0001"}],
    },
}


def _key(name: str) -> Any:
    rules = KEYS[name]
    return Query(
        None,
        include_in_schema=False,
        max_length=rules.get("maxLength"),
        pattern=rules.get("pattern"),
    )


@router.get(
    "/v1/search",
    response_model=SearchPage,
    summary="Records matching exactly one key, in commit order",
    description="Give exactly one of the key filters. `from_time`/`to_time` bound the "
    "commit time of the block (RFC 3339 UTC). Pass `next_cursor` back as "
    "`cursor` for the next page; it is null on the last page.",
    responses=errors(400),
    openapi_extra={"parameters": [_KEY_PARAMETER]},
)
async def search(
    node: NodeDep,
    view: PartyView,
    case_ref: str | None = _key("case_ref"),
    evidence_sha256: str | None = _key("evidence_sha256"),
    actor_state: str | None = _key("actor_state"),
    territorial_state: str | None = _key("territorial_state"),
    type: str | None = _key("type"),
    signer: str | None = _key("signer"),
    from_time: str | None = utc_time("2026-11-22T00:00:00Z"),
    to_time: str | None = utc_time("2026-11-23T00:00:00Z"),
    cursor: Cursor = None,
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
        node.app,
        filters,
        from_time=from_time,
        to_time=to_time,
        cursor=cursor,
        limit=limit,
        load=view.load,
        sealed=view.private,
    )
