"""Records: submit envelopes (one or a batch), read them back, wait for commit, prove them."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import NodeDep, ReadAccess, RecordId, read_body
from api.ratelimit import client_host, limit_writes, write_limits
from api.schemas import (
    ENVELOPE_EXAMPLE,
    BatchResult,
    InclusionProof,
    RecordView,
    SubmitResult,
    errors,
)
from ledger.canonical import parse_json
from ledger.errors import ClientError, EncodingError, NotFound, TooLarge
from ledger.records import Envelope, parse_envelope, parse_envelope_bytes
from node import queries
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
    "when the same record is already on the chain (idempotent).",
    responses={200: {"model": SubmitResult}, **errors(400, 403, 409, 413, 422, 429, 503)},
    openapi_extra=_body_doc(ENVELOPE_EXAMPLE, "Envelope"),
    dependencies=[WriteLimit],
)
async def submit(request: Request, node: NodeDep) -> JSONResponse:
    body = await read_body(request, record_body_max_bytes(node))
    node.mempool.check_room(1)  # refuse cheaply before parsing when the pool is full
    envelope = parse_envelope_bytes(body, max_record_bytes=node.app.params.max_record_bytes)
    write_limits(request).records(client_host(request), [envelope.signer])
    await node.verify_signatures([envelope], admission=True)
    result = node.admit(envelope)
    return JSONResponse(
        {"id": result.id, "status": result.status},
        status_code=200 if result.status == "committed" else 202,
    )


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
    limits = node.config.limits
    body = await read_body(request, limits.max_request_bytes)
    node.mempool.check_room(1)  # refuse cheaply before parsing when the pool is full
    # Up to max_request_bytes of JSON: parsed in a worker thread, so the event
    # loop (consensus, P2P) keeps running meanwhile.
    parsed = await asyncio.to_thread(
        _parse_batch, body, limits.max_batch_records, node.app.params.max_record_bytes
    )
    envelopes = [e for e in parsed if isinstance(e, Envelope)]
    # All or nothing on rate and room: a client told 429 or 503 resends the same
    # batch after Retry-After, and no envelope is verified only to be refused.
    write_limits(request).records(client_host(request), (e.signer for e in envelopes))
    node.mempool.check_fits(envelopes)
    await node.verify_signatures(envelopes, admission=True)
    # Again after the wait: peers' gossip may have taken the room meanwhile. From
    # here to the reply nothing else runs, so the batch is admitted whole or not.
    node.mempool.check_fits(envelopes)
    # Serialised directly (the shape is BatchResult, as documented): validating up to
    # max_batch_records results again through the response model costs more than
    # admitting them.
    results = [_admit_one(node, i, item) for i, item in enumerate(parsed)]
    return Response(orjson.dumps({"results": results}), media_type="application/json")


def _parse_batch(body: bytes, limit: int, max_record_bytes: int) -> list[Envelope | ClientError]:
    """The batch's envelopes, each parsed or the error that refused it (pure)."""
    items = _batch_items(parse_json(body), limit)
    parsed: list[Envelope | ClientError] = []
    for item in items:
        try:
            parsed.append(parse_envelope(item, max_record_bytes=max_record_bytes))
        except ClientError as exc:
            parsed.append(exc)
    return parsed


def _batch_items(obj: Any, limit: int) -> list[Any]:
    if (
        not isinstance(obj, dict)
        or set(obj) != {"envelopes"}
        or not isinstance(obj["envelopes"], list)
    ):
        raise EncodingError(
            'batch body must be {"envelopes": [...]}', field="envelopes", code="bad_type"
        )
    items: list[Any] = obj["envelopes"]
    if len(items) > limit:
        raise TooLarge(
            f"batch has {len(items)} envelopes, limit is {limit}",
            field="envelopes",
            code="batch_too_large",
        )
    return items


def _admit_one(node: Node, index: int, item: Envelope | ClientError) -> dict[str, Any]:
    try:
        if isinstance(item, ClientError):
            raise item
        result = node.admit(item)
    except ClientError as exc:
        return {"index": index, "error": exc.to_json()["error"]}
    return {"index": index, "id": result.id, "status": result.status}


@router.get(
    "/{record_id}",
    response_model=RecordView,
    dependencies=[ReadAccess],
    summary="A record, pending or committed",
    responses=errors(400, 404),
)
async def get_record(
    record_id: RecordId,
    node: NodeDep,
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
    return node.record_view(record_id)


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
