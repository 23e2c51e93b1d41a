"""Server-Sent Events: committed blocks and records, resumable with Last-Event-ID, and
deadline transitions (live only): those of the acts in clear for every subscriber, and
those of the private acts this node is a party of for a subscriber whose bearer token
may read their bodies (the rule of ``party_view``; each such event is access-logged)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import AccessLogDep, NodeDep, ReadAccess
from api.schemas import errors
from ledger.errors import Forbidden, Unauthorized
from node import evidence
from node.access_log import AccessLog
from node.events import (
    BodyReader,
    DeadlinePump,
    EventFilter,
    EventHub,
    parse_event_id,
    stream,
)
from node.evidence import ChainView
from node.runtime import Node
from node.tokens import TokenInfo, TokenStore, check_body_reader

router = APIRouter(tags=["events"], dependencies=[ReadAccess])
PING_S = 15


def _codes(text: str | None) -> frozenset[str]:
    return frozenset(p for p in (text or "").split(",") if p)


def body_reader(request: Request, node: Node, access_log: AccessLog) -> BodyReader | None:
    """The subscriber's right to private acts' deadline events, or None (clear ones only).

    The rule of ``party_view``: an ``Authorization: Bearer`` token that may read
    bodies of this node's state; anything else (no header, an unknown or revoked
    token, a role that reads no body) subscribes as before, to the clear events."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    tokens: TokenStore = request.app.state.tokens
    try:
        token = check_body_reader(tokens.authenticate(secret.strip()), state=node.config.state)
    except (Unauthorized, Forbidden):
        return None
    state = node.config.state

    def logged(record_id: str, live: TokenInfo) -> None:
        access_log.append(record_id=record_id, state=state, token=live, outcome="ok")

    return BodyReader(token, state, tokens.current, logged)


def _pump(hub: EventHub, node: Node) -> DeadlinePump:
    """Deadlines over the acts in clear, and over the bodies this node holds (read
    without an access-log line: an event is logged when it is sent to a reader)."""
    return DeadlinePump(
        hub,
        node.store,
        lambda: evidence.view_of(node.app),
        private_view=lambda: ChainView(node.store, node.app.load_content, private=True),
    )


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
    "overdue; `state`/`type` filter it by its act. Everyone gets those of acts in clear; "
    "those of a private act this node is a party of go only to a subscriber whose "
    "`Authorization: Bearer` token may read its body (as `GET /v1/deadlines`: role, state, "
    "case), each one logged in the access log as a read of that act.",
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
    access_log: AccessLogDep,
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
        EventFilter(_codes(state), _codes(type), _codes(territorial_state), foreign),
        body_reader(request, node, access_log),
    )
    if hub.pump is None:
        hub.pump = _pump(hub, node)
    hub.pump.ensure_running()
    source = stream(hub, sub, node.store, node.app.load_envelope, after)

    async def messages() -> AsyncIterator[ServerSentEvent]:
        async for event in source:
            yield ServerSentEvent(
                data=json.dumps(event.data, separators=(",", ":")), event=event.kind, id=event.id
            )

    return EventSourceResponse(messages(), ping=PING_S, headers={"Cache-Control": "no-store"})
