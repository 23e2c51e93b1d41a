"""Offline proof bundles of records, and the genesis document nodes hash.

``GET /v1/records/{id}/bundle`` returns the bundle ``comity bundle export``
writes (format in docs/AUDIT.md); ``GET /v1/genesis`` the genesis exactly as
nodes hash it (every default written out), so an auditor can complete a
genesis file that leaves defaults out and compare hashes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import NodeDep, ReadAccess, RecordId
from api.schemas import errors
from ledger.audit_source import StoreSource, build_bundle
from node import queries

router = APIRouter(tags=["proofs"], dependencies=[ReadAccess])


@router.get(
    "/v1/records/{record_id}/bundle",
    summary="An offline proof bundle of one committed record",
    description="Genesis, the record with its inclusion proof and certified block, "
    "and every governance record up to that height with theirs, so the "
    "validator set of each height can be derived offline. "
    "`latest=true` adds the latest checkpoint and consistency proofs.",
    responses=errors(400, 404),
)
async def record_bundle(
    record_id: RecordId,
    node: NodeDep,
    latest: bool = Query(False, description="add the latest checkpoint"),
) -> dict[str, Any]:
    queries.parse_record_id(record_id)
    source = StoreSource(node.store, node.app.genesis.to_json())
    return await build_bundle(source, [record_id], latest=latest)


@router.get("/v1/genesis", summary="The genesis document as nodes hash it")
async def genesis(node: NodeDep) -> dict[str, Any]:
    return node.app.genesis.to_json()
