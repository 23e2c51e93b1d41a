"""Consortium governance as the chain records it: members, proposals, misbehaviour.

The validator set of a height, with the records that changed it, is served
by ``api.routers.validators`` (``GET /v1/validators``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.deps import NodeDep, ReadAccess
from api.schemas import errors
from node import queries

router = APIRouter(tags=["governance"], dependencies=[ReadAccess])


class MemberRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: str
    name: str
    node_pubkey: str
    admin_pubkeys: list[str]
    enc_pubkey: str
    p2p_url: str
    since_height: int
    until_height: int | None
    record_id: str | None
    validating: bool


class Members(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int
    members: list[MemberRow]


class ObserverRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node_pubkey: str
    state: str
    label: str
    since_height: int
    until_height: int | None
    record_id: str
    admitted: bool
    party: bool


class Observers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int
    observers: list[ObserverRow]


class Proposals(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int
    proposals: list[dict[str, Any]]


class MisbehaviourRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    evidence_id: str
    record_id: str
    committed_at: int
    reporter_state: str
    offender_state: str
    offender_pubkey: str
    height: int
    round: int
    kind: str


class Misbehaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int
    misbehaviour: list[MisbehaviourRow]


@router.get(
    "/v1/members",
    response_model=Members,
    summary="Member states, past and present (validating: in the next height's set)",
)
async def members(node: NodeDep) -> dict[str, Any]:
    return {"height": node.app.height, "members": queries.members_view(node.app.state)}


@router.get(
    "/v1/observers",
    response_model=Observers,
    summary="Observer nodes, past and present (admitted: peers answer it now)",
    description="Every observer node an `add_observer` vote admitted, with the proposal "
    "that did (`record_id`) and, once removed, `until_height`. `party`: its `state` is a "
    "member of the next height, so it is that state's own observer and holds its private "
    "bodies; otherwise a foreign observer (headers only). See "
    'docs/GOVERNANCE.md "Observer nodes".',
)
async def observers(node: NodeDep) -> dict[str, Any]:
    return {"height": node.app.height, "observers": queries.observers_view(node.app.state)}


@router.get(
    "/v1/proposals",
    response_model=Proposals,
    responses=errors(400),
    summary="Membership proposals with their votes, optionally by status",
)
async def proposals(
    node: NodeDep, status: Literal["open", "passed", "expired", "rejected"] | None = Query(None)
) -> dict[str, Any]:
    return {"height": node.app.height, "proposals": queries.proposals_view(node.app.state, status)}


@router.get(
    "/v1/misbehaviour",
    response_model=Misbehaviour,
    responses=errors(400),
    summary="Recorded equivocations, optionally of one offender state",
)
async def misbehaviour(
    node: NodeDep, state: str | None = Query(None, pattern="^[A-Z]{2}$")
) -> dict[str, Any]:
    return {
        "height": node.app.height,
        "misbehaviour": queries.misbehaviour_view(node.app.state, state),
    }
