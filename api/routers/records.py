"""Records: submit envelopes (one or a batch), read them back, wait for commit, prove them."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import NodeDep, ReadAccess, RecordId, read_body
from api.ratelimit import client_host, limit_writes, write_limits
from api.routers.private import PartyView
from api.schemas import (
    ENVELOPE_EXAMPLE,
    BatchResult,
    InclusionProof,
    RecordView,
    SubmitResult,
    errors,
)
from ledger.errors import ClientError, NotFound
from node import queries, trail
from node.admission import Charge
from node.runtime import Node

router = APIRouter(prefix="/v1/records", tags=["records"])
WriteLimit = Depends(limit_writes)
#: Room around a record in a single envelope's body: signer, signature, keys.
ENVELOPE_FRAMING_BYTES = 1024


def record_body_max_bytes(node: Node) -> int:
    """The body limit of ``POST /v1/records``: one envelope, so near the genesis
    record limit (twice it leaves room for JSON that JCS would shrink:
    whitespace, escapes), not the batch route's ``max_request_bytes``."""
    return min(
        node.config.limits.max_request_bytes,
        2 * node.app.params.max_record_bytes + ENVELOPE_FRAMING_BYTES,
    )


def _body_doc(example: dict[str, Any], component: str) -> dict[str, Any]:
    # The body is read raw (canonical-JSON subset parser); its schema is a component
    # that api/openapi.py adds, sized by the node's limits.
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{component}"},
                    "example": example,
                }
            },
        }
    }


@router.post(
    "",
    status_code=202,
    response_model=SubmitResult,
    summary="Submit one signed envelope",
    description="202 when accepted into the mempool; 200 with status `committed` "
    "when the same record is already on the chain (idempotent). `warnings` (only when "
    "there are some): admitted, but worth a look, e.g. `translation_missing`.",
    responses={200: {"model": SubmitResult}, **errors(400, 403, 409, 413, 422, 429, 503)},
    openapi_extra=_body_doc(ENVELOPE_EXAMPLE, "Envelope"),
    dependencies=[WriteLimit],
)
async def submit(request: Request, node: NodeDep) -> JSONResponse:
    body = await read_body(request, record_body_max_bytes(node))
    result = await node.admission.submit(body, _charge(request))
    return JSONResponse(result.to_json(), status_code=200 if result.status == "committed" else 202)


@router.post(
    "/batch",
    response_model=BatchResult,
    response_model_exclude_none=True,
    summary="Submit up to max_batch_records envelopes",
    description="Each item is checked and admitted on its own: one bad item does "
    "not reject the others. `results[i].index` is the item's position. "
    "503 (with Retry-After) when the mempool, or a state's or signer's "
    "share of it, has no room for the whole batch, and 429 (with "
    "Retry-After) when a signer of it is over its rate: resend it "
    "after Retry-After.",
    responses=errors(400, 413, 429, 503),
    openapi_extra=_body_doc({"envelopes": [ENVELOPE_EXAMPLE]}, "BatchRequest"),
    dependencies=[WriteLimit],
)
async def submit_batch(request: Request, node: NodeDep) -> Response:
    body = await read_body(request, node.config.limits.max_request_bytes)
    results = await node.admission.submit_batch(body, _charge(request))
    # Serialised directly (the shape is BatchResult, as documented): validating up to
    # max_batch_records results again through the response model costs more than
    # admitting them.
    return Response(orjson.dumps({"results": results}), media_type="application/json")


def _charge(request: Request) -> Charge:
    """The client's write rate, charged by admission for the signers it will verify."""
    limits, host = write_limits(request), client_host(request)
    return lambda signers: limits.records(host, signers)


@router.get(
    "/{record_id}",
    response_model=RecordView,
    dependencies=[ReadAccess],
    summary="A record, pending or committed",
    description="`channel_trail` lists the `exchange_receipt`s that anchor a committed "
    "record, in commit order: channel, external_id, document hash, sent_at and the "
    "delivery evidence's kinds and times (docs/CHANNELS.md). A private receipt is listed "
    "only for a bearer token that may read its body (the read is logged).",
    responses=errors(400, 404),
)
async def get_record(
    record_id: RecordId,
    node: NodeDep,
    view: PartyView,
    wait: float = Query(
        0,
        ge=0,
        le=600,
        description="long-poll up to this many seconds "
        "(capped by the node's long_poll_max_s) "
        "for the record to commit",
    ),
) -> dict[str, Any]:
    queries.parse_record_id(record_id)
    if wait > 0:
        await node.wait_committed(record_id, min(wait, node.config.limits.long_poll_max_s))
    record = node.record_view(record_id)
    if record["status"] == "committed":
        record["channel_trail"] = trail.channel_trail(view, record_id)
    return record


@router.get(
    "/{record_id}/proof",
    response_model=InclusionProof,
    dependencies=[ReadAccess],
    summary="RFC 6962 inclusion proof of a committed record",
    description="By default against the checkpoint (`ledger_size`, `ledger_root`) of "
    "the block that committed it; `tree_size` asks for a later size. "
    "`checkpoint_height` names the block whose header holds that root.",
    responses=errors(400, 404),
)
async def get_proof(
    record_id: RecordId,
    node: NodeDep,
    tree_size: int | None = Query(None, ge=1, description="a later log size"),
) -> dict[str, Any]:
    queries.parse_record_id(record_id)
    try:
        return queries.record_proof(node.store, record_id, tree_size)
    except ClientError as exc:
        if exc.code != "bad_tree_size":
            raise
        # A size the record is not in, or beyond the log: that proof does not exist.
        raise NotFound(exc.message, field="tree_size", code="bad_tree_size") from exc
