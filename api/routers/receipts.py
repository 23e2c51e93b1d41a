"""Receipts: the signed webhook a national system or an e-CODEX connector calls (docs/CHANNELS.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.deps import NodeDep, read_body
from api.ratelimit import limit_writes
from api.schemas import errors
from ledger.errors import NotFound, Unauthorized
from node import clock
from node.receipts import (
    SIGNATURE_HEADER,
    WEBHOOK_BODY_MAX_BYTES,
    check_signature,
    parse_webhook,
)

router = APIRouter(prefix="/v1/receipts", tags=["receipts"])

_EXAMPLE = {
    "record_id": "ab" * 32,
    "channel": "e_codex",
    "external_id": "6f1c2a9e-1b7d-4c55-9e0a-2f9d1b3c4d5e@domibus.fr",
    "document_sha256": "cd" * 32,
    "delivery_evidence": [
        {"kind": "submission", "sha256": "01" * 32, "at": "2026-03-01T09:00:00Z"},
        {"kind": "delivery", "sha256": "02" * 32, "at": "2026-03-01T09:00:05Z"},
    ],
    "sender_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:FR-PARQUET",
    "recipient_endpoint": "urn:oasis:names:tc:ebcore:partyid-type:unregistered:TH-OAG",
    "sent_at": "2026-03-01T09:00:00Z",
}


@router.post(
    "/webhook",
    status_code=202,
    summary="Anchor what a channel carried (HMAC-signed webhook)",
    description=f"Authenticated by `{SIGNATURE_HEADER}: t=<unix>,v1=<hex HMAC-SHA256 of "
    '`t + "." + body`>` with the secret in the node\'s `[receipts] webhook_secret_path` '
    f"(401 `signature_required`, `bad_signature_header`, `stale_signature` beyond "
    f"300 s, `bad_signature`). The node signs an `exchange_receipt` with its integration "
    "key and admits it: 202 with its id; 200 with the earlier receipt's id and "
    '`"duplicate": true` when this state already anchored the message (same channel and '
    "external_id). 404 `webhook_not_configured` on a node without a `[receipts]` section "
    "(an unsigned call is 401 first). "
    f"Bodies over {WEBHOOK_BODY_MAX_BYTES} bytes are 413.",
    responses={
        200: {"description": "already anchored"},
        **errors(400, 401, 403, 404, 409, 413, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/WebhookReceipt"},
                    "example": _EXAMPLE,
                }
            },
        },
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "schema": {"type": "string", "maxLength": 1024},
                "example": "t=1772355600,v1=" + "0" * 64,
            }
        ],
    },
    dependencies=[Depends(limit_writes)],
)
async def webhook(request: Request, node: NodeDep) -> JSONResponse:
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:  # unsigned: 401 whether or not this node takes receipts
        raise Unauthorized(
            f"{SIGNATURE_HEADER} is required",
            field=f"header.{SIGNATURE_HEADER}",
            code="signature_required",
        )
    desk = node.receipts
    if desk is None:
        raise NotFound(
            "this node has no receipt webhook ([receipts] in its config)",
            field="path",
            code="webhook_not_configured",
        )
    body = await read_body(request, WEBHOOK_BODY_MAX_BYTES)
    check_signature(desk.secret, header, body, clock.now_ms() / 1000)
    result = desk.anchor(parse_webhook(body), clock.utcnow())
    return JSONResponse(result, status_code=200 if result["duplicate"] else 202)
