"""Cases, deadlines and evidence custody: read-side views over committed acts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.certificate.loopback import CERTIFICATES_AT_ONCE_MAX, certificate_pdf
from api.certificate.render import LANGUAGES as CERTIFICATE_LANGUAGES
from api.certificate.render import check_lang
from api.deps import Cursor, NodeDep, ReadAccess, Sha256, StateCode, utc_time
from api.routers.private import PartyView
from api.schemas import errors
from ledger.records import check_state_code
from node import case_bundle as case_bundles
from node import clock, deadlines, evidence, queries


def _list_of(names: Sequence[str]) -> str:
    """A pattern for a comma-separated list of ``names`` (the OpenAPI document says it)."""
    one = "(" + "|".join(names) + ")"
    return f"^{one}(,{one})*$"


router = APIRouter(tags=["cases"], dependencies=[ReadAccess])


@router.get(
    "/v1/cases/{case_ref:path}/bundle",
    summary="An offline proof bundle of a whole case",
    description="Every record of the case this caller may see, every answer to them, every "
    "custody event of their evidence hashes and every record they reference, with inclusion "
    "proofs, certificates, the governance records from genesis and the latest checkpoint; "
    "private bodies only for a token that may read them (format `comity-case/1`, "
    "docs/AUDIT.md). Over "
    f"{case_bundles.CASE_BUNDLE_RECORDS_MAX} records: 413 `case_too_large`. Declared before "
    "the timeline, so a case_ref ending in `/bundle` names this route.",
    responses=errors(400, 404, 413),
)
async def case_bundle(case_ref: str, node: NodeDep, view: PartyView) -> dict[str, Any]:
    return await case_bundles.case_bundle(view, node.app.genesis.to_json(), case_ref)


@router.get(
    "/v1/cases/{case_ref:path}/certificate",
    summary="The judge's certificate of a case, as PDF",
    description="The case as this caller's token sees it (every record, answer, sovereignty "
    "answer and custody chain), rendered as `comity case certificate --node` renders it: its "
    "checks are `not_run` (reading views verifies nothing: verify the case bundle) and its "
    "hash pins the content shown. `lang`: "
    + ", ".join(f"`{lang}`" for lang in CERTIFICATE_LANGUAGES)
    + "; another is 400 `bad_lang`. At most "
    + f"{CERTIFICATES_AT_ONCE_MAX} are built at once: 503 `too_many_certificates`. "
    "Declared before the timeline, so a case_ref ending in "
    "`/certificate` names this route.",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
        **errors(400, 404, 503),
    },
)
async def case_certificate(
    case_ref: str,
    request: Request,
    lang: str = Query(
        "en", max_length=8, examples=["fr"], json_schema_extra={"enum": list(CERTIFICATE_LANGUAGES)}
    ),
) -> Response:
    evidence.check_case_ref(case_ref)
    check_lang(lang)
    pdf = await certificate_pdf(
        request.app,
        request.headers.get("authorization"),
        case_ref,
        lang,
        str(request.base_url).rstrip("/"),
    )
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in case_ref)[:100]
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "content-disposition": f'attachment; filename="certificate-{name}-{lang}.pdf"',
            "cache-control": "no-store",
        },
    )


@router.get(
    "/v1/cases/{case_ref:path}",
    summary="A case's timeline across states",
    description="Every committed record with this case_ref, in commit order. "
    "A case_ref the router cannot match (e.g. one holding a newline) is "
    "404.",
    responses=errors(400, 404),
)
async def case(
    case_ref: str,
    node: NodeDep,
    view: PartyView,
    cursor: Cursor = None,
    limit: int = Query(100, ge=1, le=evidence.PAGE_MAX),
) -> dict[str, Any]:
    return evidence.case_timeline(
        view, case_ref, after_leaf=evidence.parse_cursor(cursor), limit=limit
    )


@router.get(
    "/v1/deadlines",
    summary="Legal clocks: what is due, when, from whom, and under which text",
    description="Each item is one clock (docs/ACTS.md §6) of one act: its `clock` id, legal "
    "`source`, `start`, `due_at`, `status` (running, warning, overdue, stopped) and the "
    "`acts` concerned, soonest first. Items due within `within_days` (or overdue) are listed; "
    "`status` (comma-separated; default all but stopped) and `clock` narrow them, `state` "
    "keeps one actor's, `at` evaluates as of another time (default: now). Pages of `limit` "
    "items; pass `next_cursor` back as `cursor`.",
    responses=errors(400, 422),
)
async def get_deadlines(
    node: NodeDep,
    view: PartyView,
    within_days: int = Query(7, ge=0, le=deadlines.WITHIN_DAYS_MAX),
    unanswered_days: int = Query(
        deadlines.UNANSWERED_DAYS_DEFAULT, ge=0, le=deadlines.WITHIN_DAYS_MAX
    ),
    state: StateCode = None,
    status: str | None = Query(
        None, max_length=100, pattern=_list_of(deadlines.STATUSES), examples=["warning,overdue"]
    ),
    clock_id: str | None = Query(
        None, alias="clock", max_length=2000, pattern=_list_of(sorted(deadlines.CLOCK_IDS))
    ),
    at: str | None = utc_time("2026-03-01T00:00:00Z"),
    cursor: str | None = Query(None, max_length=200, pattern=deadlines.CURSOR_PATTERN),
    limit: int = Query(100, ge=1, le=evidence.PAGE_MAX),
) -> dict[str, Any]:
    now = queries.query_time(at, "at") if at else clock.utcnow()
    only = check_state_code(state, "state") if state else None
    return deadlines.deadlines(
        view,
        now,
        within_days=within_days,
        unanswered_days=unanswered_days,
        state=only,
        statuses=deadlines.parse_statuses(status),
        clocks=deadlines.parse_clocks(clock_id),
        after=deadlines.parse_cursor(cursor),
        limit=limit,
    )


@router.get(
    "/v1/evidence/{sha256}",
    summary="Records holding an evidence hash, and custody",
    description="Every committed record listing the hash, and the custody state "
    "machine replayed over each custody chain (hash, introducing act) "
    "(docs/ACTS.md).",
    responses=errors(400, 404),
)
async def get_evidence(sha256: Sha256, view: PartyView) -> dict[str, Any]:
    return evidence.evidence_view(view, sha256)
