"""Server-Sent Events: committed blocks and records, resumable with Last-Event-ID, and
deadline transitions (live only) computed over the acts in clear."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import NodeDep, ReadAccess
from api.schemas import errors
from node import evidence
from node.events import DeadlinePump, EventFilter, EventHub, parse_event_id, stream

router = APIRouter(tags=["events"], dependencies=[ReadAccess])
PING_S = 15


def _codes(text: str | None) -> frozenset[str]:
    return frozenset(p for p in (text or "").split(",") if p)


@router.get(
    "/v1/events",
    summary="Stream of committed blocks and records (SSE)",
    description="Events `block` (id `H`) and `record` (id `H:LEAF`), in commit order. "
    "`state`/`type` (comma-separated) filter record events; "
    "`territorial_state=XX&foreign=true` streams the sovereignty "
    "notices of XX: acts by other states on its territory, the moment "
    "they commit. Block events always come. Reconnect with `Last-Event-ID` (or `?last_event_id=`) "
    "to get exactly the events after it, replayed from the ledger. Event `deadline` (live only, "
    "not replayed): a clock of `GET /v1/deadlines` entered its warning window or became "
    "overdue; `state`/`type` filter it by its act.",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "example": 'event: block\nid: 12\ndata: {"height":12,...}\n\n'
                }
            }
        },
        **errors(400, 503),
    },
)
async def events(
    request: Request,
    node: NodeDep,
    state: str | None = Query(None, max_length=200, examples=["FR,TH"]),
    type: str | None = Query(None, max_length=1000),
    territorial_state: str | None = Query(None, max_length=200, examples=["TH"]),
    foreign: bool = Query(False, description="with territorial_state: only acts by other states"),
    last_event_id: str | None = Query(None, max_length=40),
    last_event_id_header: str | None = Header(None, alias="Last-Event-ID", max_length=40),
) -> EventSourceResponse:
    resume = last_event_id_header or last_event_id
    after = parse_event_id(resume) if resume else None
    hub: EventHub = request.app.state.events
    sub = hub.subscribe(
        EventFilter(_codes(state), _codes(type), _codes(territorial_state), foreign)
    )
    if hub.pump is None:  # deadlines over what every reader sees: the acts in clear
        hub.pump = DeadlinePump(hub, node.store, lambda: evidence.view_of(node.app))
    hub.pump.ensure_running()
    source = stream(hub, sub, node.store, node.app.load_envelope, after)

    async def messages() -> AsyncIterator[ServerSentEvent]:
        async for event in source:
            yield ServerSentEvent(
                data=json.dumps(event.data, separators=(",", ":")), event=event.kind, id=event.id
            )

    return EventSourceResponse(messages(), ping=PING_S, headers={"Cache-Control": "no-store"})
