"""Committed blocks with their commit certificates.

``?envelopes=true`` adds each block's envelopes (in block order), everything
an auditor needs to re-check the block from genesis (``comity verify``,
docs/AUDIT.md). Those replies bypass the ``BlockView`` schema, whose other
members they share, because envelopes are typed by docs/PROTOCOL.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import NodeDep, ReadAccess
from api.schemas import MAX_SAFE_INT, BlocksPage, BlockView, errors
from node import queries

router = APIRouter(prefix="/v1/blocks", tags=["blocks"], dependencies=[ReadAccess])

_ENVELOPES = Query(False, description="also return each block's envelopes, in block order")


def _reply(view: dict[str, Any], envelopes: bool) -> Any:
    return JSONResponse(view) if envelopes else view


@router.get(
    "",
    response_model=BlocksPage,
    response_model_exclude_unset=True,
    summary="A page of blocks in height order",
    responses=errors(400),
)
async def list_blocks(
    node: NodeDep,
    from_: int = Query(1, alias="from", ge=1, le=MAX_SAFE_INT, description="first height"),
    limit: int = Query(20, ge=1, le=queries.BLOCKS_PAGE_MAX),
    envelopes: bool = _ENVELOPES,
) -> Any:
    return _reply(queries.blocks_page(node.store, from_, limit, envelopes=envelopes), envelopes)


@router.get(
    "/latest",
    response_model=BlockView,
    response_model_exclude_unset=True,
    summary="The highest committed block",
    responses=errors(404),
)
async def latest(node: NodeDep, envelopes: bool = _ENVELOPES) -> Any:
    return _reply(queries.latest_block(node.store, envelopes=envelopes), envelopes)


@router.get(
    "/{height}",
    response_model=BlockView,
    response_model_exclude_unset=True,
    summary="The block at `height`",
    responses=errors(400, 404),
)
async def block(
    node: NodeDep, height: int = Path(ge=1, le=MAX_SAFE_INT), envelopes: bool = _ENVELOPES
) -> Any:
    return _reply(queries.block_view(node.store, height, envelopes=envelopes), envelopes)
