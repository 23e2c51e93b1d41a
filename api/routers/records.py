"""Records: submit envelopes, read them back, wait for their commit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.deps import NodeDep, read_body
from ledger.hashing import parse_hex
from ledger.records import parse_envelope_bytes

router = APIRouter(prefix="/v1/records", tags=["records"])


@router.post("", status_code=202, summary="Submit one signed envelope")
async def submit(request: Request, node: NodeDep) -> JSONResponse:
    body = await read_body(request, node.config.limits.max_request_bytes)
    envelope = parse_envelope_bytes(body, max_record_bytes=node.app.params.max_record_bytes)
    result = node.admit(envelope)
    return JSONResponse({"id": result.id, "status": result.status}, status_code=202)


@router.get("/{record_id}", summary="A record, pending or committed")
async def get_record(record_id: str, node: NodeDep,
                     wait: float = Query(0, ge=0, le=600,
                                         description="long-poll up to this many seconds "
                                                     "for the record to commit")
                     ) -> dict[str, Any]:
    parse_hex(record_id, 32, "id")
    if wait > 0:
        await node.wait_committed(record_id, min(wait, node.config.limits.long_poll_max_s))
    return node.record_view(record_id)
