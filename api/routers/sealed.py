"""Sealed details, decrypted for an authorised caller of a recipient node; the access log.

Always needs a bearer token (even on an ``open_read`` node): reading sealed
details is need-to-know (004 §53), and the access log must name who read.
Readers follow ``node.tokens.require_body_reader``: ``investigator`` and
``authority`` tokens, ``auditor`` tokens only when bound to cases, and a
token bound to cases only for records of those cases. The log is for
``operator`` and ``auditor`` tokens.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.deps import AccessLogDep, BodyReaderToken, Credentials, NodeDep, RecordId
from api.schemas import errors
from ledger.errors import Forbidden, Unauthorized
from node.queries import parse_record_id
from node.sealed_access import SealedReader, open_reader
from node.tokens import TokenInfo, TokenStore

router = APIRouter(tags=["sealed"])
LOG_ROLES = frozenset({"operator", "auditor"})


def _token(request: Request, credentials: Credentials, roles: frozenset[str]) -> TokenInfo:
    tokens: TokenStore = request.app.state.tokens
    info = tokens.authenticate(credentials.credentials) if credentials is not None else None
    if info is None:
        raise Unauthorized("a valid bearer token is required", code="unauthorized")
    if info.role not in roles:
        raise Forbidden(
            f"this endpoint needs a token of role {' or '.join(sorted(roles))}", code="forbidden"
        )
    return info


async def log_token(request: Request, credentials: Credentials) -> TokenInfo:
    return _token(request, credentials, LOG_ROLES)


def get_reader(request: Request, node: NodeDep, access_log: AccessLogDep) -> SealedReader:
    """One reader per app, made on first use, writing to the app's one access log."""
    reader = getattr(request.app.state, "sealed_reader", None)
    if not isinstance(reader, SealedReader):
        reader = open_reader(
            node.config.state,
            node.app,
            enc_key=node.enc_key,
            enc_key_path=node.config.enc_key_path,
            data_dir=node.config.data_dir,
            access_log=access_log,
        )
        request.app.state.sealed_reader = reader
    return reader


Reader = Annotated[SealedReader, Depends(get_reader)]


@router.get(
    "/v1/records/{record_id}/sealed",
    summary="Decrypt a record's sealed details",
    description="Needs an `investigator` or `authority` token, or an `auditor` token "
    "bound to cases (else 403 `role_not_allowed`); a token bound to cases reads only "
    "their records (403 `case_not_allowed`). Only on a node whose state is a "
    "recipient (else 403 `not_a_recipient`). A private act's details are in its "
    "body: read as `GET /v1/records/{id}/private` reads it, on a party's node only "
    "(else 403 `not_a_party`, whether or not the act has details), 404 "
    "`body_not_held` or `body_purged` when the body is not here. Every attempt that "
    "passes the role "
    "check is appended to the node's signed, hash-chained access log (refusals "
    "too) before the plaintext is returned.",
    responses=errors(400, 401, 403, 404, 422, 503),
)
async def read_sealed(
    record_id: RecordId, reader: Reader, token: BodyReaderToken
) -> dict[str, Any]:
    parse_record_id(record_id)
    return reader.read(record_id, token=token)


@router.get(
    "/v1/access-log",
    summary="This node's signed log of reads of private details",
    description="Entries after `after` (a seq), oldest first, each signed by the "
    "node key (`signer`, `signature`); `verify=true` also recomputes the whole chain "
    "and checks the signatures against this node's key. Note `head` to detect "
    "later truncation; `comity access-log verify` checks all of it without "
    "trusting the node.",
    responses=errors(401, 403),
)
async def access_log(
    reader: Reader,
    token: Annotated[TokenInfo, Depends(log_token)],
    after: int = Query(-1, ge=-1),
    limit: int = Query(100, ge=1, le=1000),
    verify: bool = Query(False),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "entries": reader.log.page(after, limit),
        "head": {"seq": reader.log.head_seq, "hash": reader.log.head_hash},
    }
    if verify:
        body["verification"] = reader.log.verify().to_json()
    return body
