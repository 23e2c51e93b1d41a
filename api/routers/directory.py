"""The consortium directory: each member's authorities, channels, languages and treaties.

Written by ``directory_entry`` records (docs/DIRECTORY.md); read here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from api.deps import NodeDep, ReadAccess
from api.schemas import errors
from node import directory_views

router = APIRouter(tags=["governance"], dependencies=[ReadAccess])


class DirectoryRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record_id: str
    height: int
    commit_time: str
    signer: str
    entry: dict[str, Any]


class Directory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int
    entries: list[DirectoryRow]


class StateDirectory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str
    height: int
    current: DirectoryRow
    history: list[DirectoryRow]
    history_total: int


@router.get(
    "/v1/directory",
    response_model=Directory,
    summary="Every member's current directory entry, with the block that committed it",
)
async def directory(node: NodeDep) -> dict[str, Any]:
    return directory_views.directory_view(node.app)


@router.get(
    "/v1/directory/{state}",
    response_model=StateDirectory,
    responses=errors(400, 404),
    summary="One member's current directory entry and its earlier entries, newest first",
)
async def state_directory(
    node: NodeDep,
    state: str = Path(pattern="^[A-Z]{2}$", description="the member state (ISO 3166 alpha-2)"),
    history_max: int = Query(
        100, ge=1, le=directory_views.HISTORY_MAX, description="earlier entries served at most"
    ),
) -> dict[str, Any]:
    return directory_views.state_view(node.app, state, history_max)
