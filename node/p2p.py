"""The P2P endpoint: the ASGI app other member nodes talk to (see node/wire.py).

Handlers authenticate the sender (node key of a current validator), bound the
body size, and hand work to the node: consensus messages go to the driver's
inbox, gossiped envelopes through the same admission checks as the API, and
block-sync requests are answered from the store. A peer's fault is answered
with a 4xx and logged; it never reaches the consensus engine unauthenticated.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consensus.messages import message_from_json
from ledger.errors import ClientError, ComityError, PeerFault
from node.application import Block
from node.driver import PeerMessage
from node.peers import now_ms
from node.wire import SIGNATURE_HEADER, open_request

if TYPE_CHECKING:
    from node.runtime import Node

log = logging.getLogger("comity.p2p")

SYNC_REPLY_BYTES_MAX = 16 * 1024 * 1024


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PeerFault(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PeerFault(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def create_p2p_app(node: Node) -> Starlette:
    async def authenticated(request: Request) -> tuple[str, dict[str, Any]]:
        body = await _read_body(request, node.config.limits.max_p2p_batch_bytes)
        return open_request(body, request.headers.get(SIGNATURE_HEADER),
                            chain_id=node.app.chain_id, allowed=node.peer_keys(),
                            now_ms=now_ms())

    async def batch(request: Request) -> Response:
        try:
            sender, payload = await authenticated(request)
        except PeerFault as exc:
            node.metrics_peer_fault(str(exc))
            return _json({"error": {"code": "peer_fault", "message": str(exc)}}, 403)
        items = payload.get("items")
        if not isinstance(items, list):
            return _json({"error": {"code": "peer_fault", "message": "items missing"}}, 400)
        for item in items:
            _take_item(node, sender, item)
        return _json({"height": node.app.height})

    async def blocks(request: Request) -> Response:
        try:
            _, payload = await authenticated(request)
        except PeerFault as exc:
            return _json({"error": {"code": "peer_fault", "message": str(exc)}}, 403)
        start, limit = payload.get("from_height"), payload.get("limit")
        if type(start) is not int or type(limit) is not int or start < 1 or limit < 1:
            return _json({"error": {"code": "bad_request",
                                    "message": "from_height and limit must be positive"}}, 400)
        return _json({"height": node.app.height, "blocks": node.blocks_for_sync(start, limit)})

    async def status(request: Request) -> Response:
        try:
            await authenticated(request)
        except PeerFault as exc:
            return _json({"error": {"code": "peer_fault", "message": str(exc)}}, 403)
        return _json({"height": node.app.height, "state": node.config.state})

    return Starlette(routes=[Route("/p2p/v1/batch", batch, methods=["POST"]),
                             Route("/p2p/v1/blocks", blocks, methods=["POST"]),
                             Route("/p2p/v1/status", status, methods=["POST"])])


def _take_item(node: Node, sender: str, item: Any) -> None:
    """One batch item: a consensus message (maybe with its block) or a gossiped record."""
    if not isinstance(item, dict):
        node.metrics_peer_fault("batch item is not an object")
        return
    try:
        if "msg" in item:
            msg = message_from_json(item["msg"])
            block = None
            if "block" in item:
                params = node.app.params
                block = Block.from_json(item["block"], max_record_bytes=params.max_record_bytes,
                                        max_records=params.max_block_records)
            if not node.driver.post(PeerMessage(msg, block)):
                node.metrics_peer_fault("inbox full")
        elif "record" in item:
            node.accept_gossip(item["record"])
    except ClientError as exc:
        log.debug("peer item from %s refused: %s", sender[:16], exc)
    except ComityError as exc:
        node.metrics_peer_fault(str(exc))
