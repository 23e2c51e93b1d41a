"""Committed blocks with their commit certificates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import NodeDep, ReadAccess
from api.schemas import BlocksPage, BlockView, errors
from node import queries

router = APIRouter(prefix="/v1/blocks", tags=["blocks"], dependencies=[ReadAccess])


@router.get("", response_model=BlocksPage, summary="A page of blocks in height order",
            responses=errors(400, 401))
async def list_blocks(node: NodeDep,
                      from_: int = Query(1, alias="from", ge=1, description="first height"),
                      limit: int = Query(20, ge=1, le=queries.BLOCKS_PAGE_MAX)
                      ) -> dict[str, Any]:
    return queries.blocks_page(node.store, from_, limit)


@router.get("/latest", response_model=BlockView, summary="The highest committed block",
            responses=errors(401, 404))
async def latest(node: NodeDep) -> dict[str, Any]:
    return queries.latest_block(node.store)


@router.get("/{height}", response_model=BlockView, summary="The block at `height`",
            responses=errors(400, 401, 404))
async def block(height: int, node: NodeDep) -> dict[str, Any]:
    return queries.block_view(node.store, height)
