"""The P2P endpoint: the ASGI app other member nodes talk to (see node/wire.py).

Each route is wrapped by ``_serve``: it authenticates the request from its
headers before reading any of the body (sender a current validator, addressed
to this node, fresh, not replayed, signature good), then streams the body,
hashing it, up to ``max_p2p_batch_bytes``, checks the hash against the signed
one, and only then parses it and calls the handler. Every reply whose request
had well-formed headers is signed by this node's key, refusals included.

Handlers hand work to the node: consensus messages go to the driver's inbox,
gossiped envelopes through the same admission checks as the API, and
block-sync requests are answered from the store. A peer's fault is answered
with a 4xx and counted under a fixed reason code; it never reaches the
consensus engine unauthenticated.

The body is parsed on the event loop: orjson holds the GIL for the whole
parse, so a worker thread would stall the loop just as long (measured: a
9 MB batch stalled a 10 ms ticker 0.30 s inline and 0.34 s from a thread).
What bounds that cost is that only an authenticated validator gets that far,
with at most ``max_p2p_batch_bytes``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consensus.messages import Proposal, message_from_json
from ledger.block import BlockHeader
from ledger.errors import ClientError, PeerFault, VerificationError
from ledger.records import Envelope, parse_envelope
from node import clock
from node.application import Block
from node.driver import PeerMessage
from node.sync import blocks_for_sync, status_reply
from node.wire import (
    ReplayCache,
    SignedRequest,
    WireRefusal,
    check_body,
    check_request,
    open_payload,
    parse_request_headers,
    sign_reply,
)

if TYPE_CHECKING:
    from node.runtime import Node

log = logging.getLogger("comity.p2p")

#: A handler: (node, authenticated sender, payload) -> (reply object, HTTP status).
Handler = Callable[["Node", str, dict[str, Any]], Awaitable[tuple[Any, int]]]


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _refusal(exc: WireRefusal) -> dict[str, Any]:
    return {"error": {"code": "peer_fault", "reason": exc.reason, "message": str(exc)}}


async def _read_body(request: Request, claim: SignedRequest, limit: int) -> bytes:
    """The body of an authenticated request, hashed as it streams in, at most ``limit``
    bytes, and the one its sender signed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireRefusal("wire_body_too_large")
    digest = hashlib.sha256()
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise WireRefusal("wire_body_too_large")
        digest.update(chunk)
        chunks.append(chunk)
    check_body(claim, digest.hexdigest())
    return b"".join(chunks)


def create_p2p_app(node: Node) -> Starlette:
    replay = ReplayCache()

    def route(path: str, handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            return await _serve(node, replay, path, handler, request)

        return Route(path, endpoint, methods=["POST"])

    return Starlette(
        routes=[
            route("/p2p/v1/batch", _batch),
            route("/p2p/v1/blocks", _blocks),
            route("/p2p/v1/block", _block_by_hash),
            route("/p2p/v1/status", _status),
        ]
    )


async def _serve(
    node: Node, replay: ReplayCache, path: str, handler: Handler, request: Request
) -> Response:
    """Authenticate, read, parse, handle, and sign the reply."""
    try:
        claim = parse_request_headers(request.headers)
    except WireRefusal as exc:  # nothing to bind a signature to: an unsigned refusal
        node.metrics_peer_fault(exc.reason)
        return _json(_refusal(exc), 403)
    try:
        check_request(
            claim,
            chain_id=node.app.chain_id,
            path=path,
            own_key=node.key.public_hex,
            allowed=node.peer_keys(),
            now_ms=clock.now_ms(),
            replay=replay,
        )
        try:
            body = await _read_body(request, claim, node.config.limits.max_p2p_batch_bytes)
        except BaseException:  # the signed body never arrived intact: it did nothing
            replay.forget(claim.sender, claim.nonce)
            raise
        payload = open_payload(body)
    except WireRefusal as exc:
        node.metrics_peer_fault(exc.reason)
        return _signed(node, path, claim, _refusal(exc), 403)
    reply, status = await handler(node, claim.sender, payload)
    return _signed(node, path, claim, reply, status)


def _signed(node: Node, path: str, claim: SignedRequest, obj: Any, status: int) -> Response:
    body = orjson.dumps(obj)
    headers = sign_reply(node.key, node.app.chain_id, path, claim, status, body)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _batch(node: Node, sender: str, payload: dict[str, Any]) -> tuple[Any, int]:
    items = payload.get("items")
    if not isinstance(items, list):
        return {"error": {"code": "peer_fault", "message": "items missing"}}, 400
    records = [
        item["record"]
        for item in items
        if isinstance(item, dict) and "record" in item and "msg" not in item
    ]
    for item in items:  # consensus first: it must never wait behind gossip
        if not (isinstance(item, dict) and "record" in item and "msg" not in item):
            _take_item(node, sender, item)
    if records:
        await _take_records(node, sender, records)
    return {"height": node.app.height}, 200


async def _blocks(node: Node, sender: str, payload: dict[str, Any]) -> tuple[Any, int]:
    start, limit = payload.get("from_height"), payload.get("limit")
    if type(start) is not int or type(limit) is not int or start < 1 or limit < 1:
        return {
            "error": {"code": "bad_request", "message": "from_height and limit must be positive"}
        }, 400
    blocks = blocks_for_sync(node.store, node.app.height, start, limit)
    return {"height": node.app.height, "blocks": blocks}, 200


async def _block_by_hash(node: Node, sender: str, payload: dict[str, Any]) -> tuple[Any, int]:
    block = node.block_by_hash(str(payload.get("hash", "")))
    if block is None:
        return {"error": {"code": "not_found", "message": "no such block"}}, 404
    return {"block": block.to_wire()}, 200


async def _status(node: Node, sender: str, payload: dict[str, Any]) -> tuple[Any, int]:
    return status_reply(node.store, node.app.height, node.config.state, payload.get("height")), 200


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
                block = Block.from_json(
                    item["block"],
                    max_record_bytes=params.max_record_bytes,
                    max_records=params.max_block_records,
                )
            elif "header" in item and isinstance(msg, Proposal):
                block = _rebuild(node, sender, msg, item)
            if not node.driver.post(PeerMessage(msg, block, sender)):
                node.metrics_peer_fault("inbox full")
        else:
            node.metrics_peer_fault("batch item is neither a message nor a record")
    except ClientError as exc:
        log.debug("peer item from %s refused: %s", sender[:16], exc)
    except (PeerFault, VerificationError) as exc:  # never StoreError/InvariantViolation
        node.metrics_peer_fault(f"peer item refused: {type(exc).__name__}")


def _rebuild(node: Node, sender: str, msg: Proposal, item: dict[str, Any]) -> Block | None:
    """A compact proposal's block from our mempool, or None (then fetch it in full).

    Records are named by id and leaf hash: a pending copy is used only if it is
    the very envelope the proposer put in the block (finding C1: one record may
    travel in two envelopes, and a body rebuilt from the other one is not the
    block's)."""
    if node.driver.blocks.get(msg.block_hash) is not None:
        return None  # we already hold it
    if msg.height <= node.app.height:
        return None  # a late or re-sent proposal of a height already committed here
    header = BlockHeader.from_json(item["header"])
    ids, leaves = item.get("ids"), item.get("leaves")
    if (
        not isinstance(ids, list)
        or len(ids) != header.record_count
        or len(ids) > node.app.params.max_block_records
    ):
        raise PeerFault("compact proposal: ids do not match the header's record_count")
    if not isinstance(leaves, list) or len(leaves) != len(ids):
        raise PeerFault("compact proposal: leaves must name each record's leaf hash")
    named = (
        dict(zip(ids, leaves, strict=True)) if all(isinstance(x, str) for x in ids + leaves) else {}
    )
    carried = _carried(node, item.get("records"), named)
    envelopes = [
        _pending(node, rid, named.get(rid)) or carried.get(rid) if isinstance(rid, str) else None
        for rid in ids
    ]
    missing = sum(e is None for e in envelopes)
    if missing:
        log.info(
            "compact proposal for height %d round %d: %d of %d records not here yet; "
            "fetching the block",
            msg.height,
            msg.round,
            missing,
            len(ids),
        )
        node.sync.fetch_block(msg.block_hash, header.height, sender)
        return None
    return Block(header, tuple(e for e in envelopes if e is not None))


def _pending(node: Node, record_id: str, leaf_hash: str | None) -> Envelope | None:
    """Our pending copy of ``record_id`` if it is the envelope with ``leaf_hash``."""
    return None if leaf_hash is None else node.mempool.get_leaf(record_id, leaf_hash)


def _carried(node: Node, raw: Any, named: dict[str, str]) -> dict[str, Envelope]:
    """The records a compact proposal carries in full (``{id: envelope}``) that we
    lack, parsed; their signatures are checked with the block's, in validation."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > len(named):
        raise PeerFault("compact proposal: records must map at most as many ids as the block holds")
    max_bytes = node.app.params.max_record_bytes
    out: dict[str, Envelope] = {}
    for record_id, obj in raw.items():
        if _pending(node, record_id, named.get(record_id)) is not None:
            continue
        envelope = parse_envelope(obj, max_record_bytes=max_bytes)
        if envelope.id != record_id:
            raise PeerFault(
                f"compact proposal: a record carried as {record_id[:16]}… has "
                f"id {envelope.id[:16]}…"
            )
        out[record_id] = envelope
    return out


async def _take_records(node: Node, sender: str, raw: list[Any]) -> None:
    """Gossiped envelopes: parse, verify signatures off the loop, then admit.

    What does not fit the mempool is dropped unread (the oldest fit first), and
    what is over a state's or signer's share is dropped before its signature is
    checked (counted in ``mempool.gossip_dropped``): the origin node still holds
    those records and will propose them itself (then this node fetches that
    block whole).
    """
    room = node.mempool.room()
    if len(raw) > room:
        node.metrics_peer_fault("gossip dropped: mempool full")
        log.info(
            "mempool full: %d of %d gossiped records from %s dropped",
            len(raw) - max(room, 0),
            len(raw),
            sender[:16],
        )
        raw = raw[: max(room, 0)]
    max_bytes = node.app.params.max_record_bytes
    envelopes = []
    for obj in raw:
        try:
            envelopes.append(parse_envelope(obj, max_record_bytes=max_bytes))
        except ClientError as exc:
            node.metrics_peer_fault(f"gossiped envelope refused: {exc.code}")
    envelopes = node.mempool.fitting(envelopes)
    await node.verify_signatures(envelopes, admission=True)
    for envelope in envelopes:
        try:
            node.accept_gossip(envelope)
        except ClientError as exc:
            log.debug("gossiped record from %s refused: %s", sender[:16], exc)
        except (PeerFault, VerificationError) as exc:  # never a local fault (ours)
            node.metrics_peer_fault(f"peer item refused: {type(exc).__name__}")
