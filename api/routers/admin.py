"""Operator endpoints: a consistent backup of the running node's store."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import NodeDep, OperatorAccess
from api.schemas import errors
from node.backup import encode_stream, snapshot_items

router = APIRouter(tags=["status"])


@router.post(
    "/v1/admin/backup",
    summary="Stream a consistent snapshot of the store "
    "(operator token; see node/backup.py for the format)",
    dependencies=[OperatorAccess],
    responses=errors(401, 403),
    response_class=StreamingResponse,
)
async def backup(node: NodeDep) -> StreamingResponse:
    # The snapshot is taken here, before the first byte: later commits are not in it.
    items = snapshot_items(node.store.kv)
    extra = {"chain_id": node.app.chain_id, "state": node.config.state}
    return StreamingResponse(
        encode_stream(items, extra),
        media_type="application/octet-stream",
        headers={"cache-control": "no-store"},
    )
