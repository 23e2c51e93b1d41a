"""A private act's body, for an authorised caller of a party's node (docs/PRIVACY.md).

Always needs a bearer token, even on an ``open_read`` node: a private body is
need-to-know, and the access log must name who read it. Every other endpoint
serves a private act's header only. Every attempt is appended to the node's
access log before the body is returned.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.deps import Credentials, NodeDep, RecordId
from api.routers.sealed import Reader, _token
from api.schemas import errors
from ledger.errors import Forbidden, NotFound
from ledger.private import is_private
from ledger.records import Envelope
from node import evidence
from node.evidence import ChainView
from node.queries import parse_record_id
from node.tokens import TokenInfo, TokenStore

router = APIRouter(tags=["sealed"])
BODY_READER_ROLES = frozenset({"investigator", "authority", "auditor"})


async def body_reader_token(request: Request, credentials: Credentials) -> TokenInfo:
    return _token(request, credentials, BODY_READER_ROLES)


def party_view(request: Request, node: NodeDep, reader: Reader) -> ChainView:
    """The committed acts as the caller may see them: with their private bodies for a
    body reader's token (each body read is logged), else headers only.

    The token is optional here (the route's own read access applies as ever): any
    other token, or none, gives the headers-only view, never an error. So it is read
    from the header rather than declared as the route's security."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    tokens: TokenStore = request.app.state.tokens
    token = tokens.authenticate(secret.strip()) if scheme.lower() == "bearer" else None
    if token is None or token.role not in BODY_READER_ROLES:
        return evidence.view_of(node.app)

    def load(record_id: str) -> Envelope:
        envelope = node.app.load_content(record_id)
        if envelope.body is not None:
            reader.log.append(
                record_id=record_id,
                state=node.config.state,
                token_id=token.id,
                role=token.role,
                outcome="ok",
            )
        return envelope

    return ChainView(node.store, load)


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
    record_id: RecordId,
    node: NodeDep,
    reader: Reader,
    token: Annotated[TokenInfo, Depends(body_reader_token)],
) -> dict[str, Any]:
    parse_record_id(record_id)
    if node.store.has_record(record_id):
        envelope = node.app.load_content(record_id)
        note = node.store.body_note(record_id) or {}
    else:
        pending = node.mempool.get(record_id)
        if pending is None:
            raise NotFound(f"no record with id {record_id}", field="id", code="record_not_found")
        envelope, note = pending, {"status": "pending"}
    if not is_private(envelope.record):
        raise NotFound("the record is not a private act", field="id", code="not_private")
    if not node.app.is_party(envelope):
        reader.log.append(
            record_id=record_id,
            state=node.config.state,
            token_id=token.id,
            role=token.role,
            outcome="not_a_recipient",
        )
        raise Forbidden(
            f"{node.config.state} is not a party of this act", field="id", code="not_a_party"
        )
    if note.get("status") == "purged":
        raise NotFound(
            f"the body was erased at {note.get('at')} (retention ended)",
            field="id",
            code="body_purged",
        )
    body = envelope.body
    if body is None and note.get("status") == "void":  # kept as evidence, without effects
        body = node.store.get_body(record_id)
        envelope = envelope.with_body(body)
    if body is None:
        raise NotFound("the body has not reached this node yet", field="id", code="body_not_held")
    reader.log.append(
        record_id=record_id,
        state=node.config.state,
        token_id=token.id,
        role=token.role,
        outcome="ok",
    )
    return {
        "id": record_id,
        "status": note.get("status"),
        "private": body,
        "content": envelope.content,
    }
