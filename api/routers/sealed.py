"""Sealed details, decrypted for an authorised caller of a recipient node; the access log.

Always needs a bearer token (even on an ``open_read`` node): reading sealed
details is need-to-know (004 §53), and the access log must name who read.
Readers are ``investigator`` and ``auditor`` tokens; the log is for
``operator`` and ``auditor`` tokens.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api.deps import Credentials, NodeDep, RecordId
from api.schemas import errors
from ledger.errors import Forbidden, Unauthorized
from node.queries import parse_record_id
from node.sealed_access import SealedReader, open_reader
from node.tokens import TokenInfo, TokenStore

router = APIRouter(tags=["sealed"])
READER_ROLES = frozenset({"investigator", "auditor"})
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


async def sealed_reader_token(request: Request, credentials: Credentials) -> TokenInfo:
    return _token(request, credentials, READER_ROLES)


async def log_token(request: Request, credentials: Credentials) -> TokenInfo:
    return _token(request, credentials, LOG_ROLES)


def get_reader(request: Request, node: NodeDep) -> SealedReader:
    """One reader (and access log) per app, made on first use."""
    reader = getattr(request.app.state, "sealed_reader", None)
    if not isinstance(reader, SealedReader):
        reader = open_reader(
            node.config.state,
            node.app,
            enc_key=node.enc_key,
            enc_key_path=node.config.enc_key_path,
            data_dir=node.config.data_dir,
        )
        request.app.state.sealed_reader = reader
    return reader


Reader = Annotated[SealedReader, Depends(get_reader)]


@router.get(
    "/v1/records/{record_id}/sealed",
    summary="Decrypt a record's sealed details",
    description="Only on a node whose state is a recipient (else 403 "
    "`not_a_recipient`). Every attempt is appended to the node's "
    "hash-chained access log before the plaintext is returned.",
    responses=errors(400, 401, 403, 404, 422, 503),
)
async def read_sealed(
    record_id: RecordId, reader: Reader, token: Annotated[TokenInfo, Depends(sealed_reader_token)]
) -> dict[str, Any]:
    parse_record_id(record_id)
    return reader.read(record_id, token_id=token.id, role=token.role)


@router.get(
    "/v1/access-log",
    summary="This node's log of sealed-detail reads",
    description="Entries after `after` (a seq), oldest first; `verify=true` also "
    "recomputes the whole hash chain. Note `head` to detect later "
    "truncation.",
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
