"""A private act's body, for an authorised caller of a party's node (docs/PRIVACY.md).

Always needs a bearer token, even on an ``open_read`` node: a private body is
need-to-know, and the access log must name who read it. Who may read is
``node.tokens.require_body_reader`` (docs/OPERATIONS.md section 7): the
role and state before the record is looked up, the case once the body is
known, in ``node.body_access.readable_body``, the one rule the sealed details
in a body are read by too (``GET /v1/records/{id}/sealed``). Every other
endpoint serves a private act's header only, and a body only to a token that
may read it. Every attempt is appended to the node's access log before the
body is returned.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.deps import AccessLogDep, BodyReaderToken, NodeDep, RecordId
from api.schemas import errors
from ledger.errors import Forbidden, NotFound, Unauthorized
from ledger.private import is_private
from ledger.records import Envelope
from node import body_access, evidence
from node.evidence import ChainView
from node.queries import parse_record_id
from node.tokens import TokenStore, check_body_reader, require_body_reader

router = APIRouter(tags=["sealed"])


def party_view(request: Request, node: NodeDep, access_log: AccessLogDep) -> ChainView:
    """The committed acts as the caller may see them: with their private bodies for a
    token that may read them (each body read is logged), else headers only.

    The token is optional here (the route's own read access applies as ever), so it
    is read from the header rather than declared as the route's security. A token
    that may read no body (an operator's, an auditor's for all cases) sees headers,
    and a token bound to cases sees the bodies of those cases only."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return evidence.view_of(node.app)
    tokens: TokenStore = request.app.state.tokens
    try:
        token = check_body_reader(tokens.authenticate(secret.strip()), state=node.config.state)
    except (Unauthorized, Forbidden):
        return evidence.view_of(node.app)

    def load(record_id: str) -> Envelope:
        envelope = node.app.load_content(record_id)
        if envelope.body is None:
            return envelope
        try:
            require_body_reader(
                token, state=node.config.state, case_ref=body_access.case_of(envelope)
            )
        except Forbidden:
            return envelope.with_body(None)
        access_log.append(record_id=record_id, state=node.config.state, token=token, outcome="ok")
        return envelope

    return ChainView(node.store, load, private=True, directory=evidence.directory_of(node.app))


#: The read views' records: bodies only for a body reader (docs/PRIVACY.md).
PartyView = Annotated[ChainView, Depends(party_view)]


@router.get(
    "/v1/records/{record_id}/private",
    summary="A private act's body and content, on a party's node",
    description="403 `not_a_party` on a node whose state is not a party of the act; "
    "404 `body_not_held` while the body has not reached this node, 404 `body_purged` "
    "once its retention ended and it was erased. The read is logged first.",
    responses=errors(400, 401, 403, 404),
)
async def read_private(
    record_id: RecordId, node: NodeDep, access_log: AccessLogDep, token: BodyReaderToken
) -> dict[str, Any]:
    parse_record_id(record_id)
    if node.store.has_record(record_id):
        envelope, note = body_access.committed(node.app, record_id)
    else:
        pending = node.mempool.get(record_id)
        if pending is None:
            raise NotFound(f"no record with id {record_id}", field="id", code="record_not_found")
        envelope, note = pending, {"status": "pending"}
    if not is_private(envelope.record):
        raise NotFound("the record is not a private act", field="id", code="not_private")
    state = node.config.state
    envelope = body_access.readable_body(
        node.app, envelope, note, token=token, log=access_log, state=state
    )
    access_log.append(record_id=record_id, state=state, token=token, outcome="ok")
    return {
        "id": record_id,
        "status": note.get("status"),
        "private": envelope.body,
        "content": envelope.content,
    }
