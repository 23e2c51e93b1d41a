"""The P2P endpoint: the ASGI app other member nodes talk to (see node/wire.py).

Each route is wrapped by ``_serve``: it authenticates the request from its
headers before reading any of the body (sender a current validator, addressed
to this node, fresh, not replayed, signature good), then streams the body,
hashing it, up to ``max_p2p_batch_bytes``, checks the hash against the signed
one, and only then parses it and calls the handler. Every reply whose request
had well-formed headers is signed by this node's key, refusals included.

The work of each path is the node's (node/inbound.py: consensus messages go
to the driver's inbox, gossiped envelopes through the same admission checks
as the API, block-sync requests are answered from the store); this module is
only the HTTP face of it, so node/ imports no web framework. A peer's fault
is answered with a 4xx and counted under a fixed reason code; it never
reaches the consensus engine unauthenticated.

The body is parsed on the event loop: orjson holds the GIL for the whole
parse, so a worker thread would stall the loop just as long (measured: a
9 MB batch stalled a 10 ms ticker 0.30 s inline and 0.34 s from a thread).
What bounds that cost is that only an authenticated validator gets that far,
with at most ``max_p2p_batch_bytes``.

An admitted observer node (an ``add_observer`` vote, docs/GOVERNANCE.md) is
authenticated the same way, but only on ``OBSERVER_PATHS`` (status, block
sync, a block by hash, bodies): on the batch path, which carries consensus
messages and gossip, it is refused ``wire_unknown_sender`` like any
non-validator, so it can never reach the engine. Each observer key has a
token bucket (``limits.observer_requests_per_s``, ``observer_burst_requests``);
a request past it is answered 429 ``rate_limited`` (reason
``observer_rate_limited``), signed, before its body is read.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.ratelimit import TokenBuckets
from node import clock
from node.hsm import off_loop
from node.inbound import OBSERVER_PATHS, PATHS, Inbound
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

#: Observer buckets kept at most (least recently used go first); each key is an
#: authenticated, admitted observer, so this bounds memory, never fairness.
OBSERVER_BUCKETS_MAX = 1024


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


def create_p2p_app(inbound: Inbound, *, replay: ReplayCache | None = None) -> Starlette:
    """The P2P app of one node, over its ``Inbound`` (``node.inbound``). ``replay`` is
    the app's replay cache (a new one by default; the simulator passes its own to
    read its size)."""
    replay = replay if replay is not None else ReplayCache()
    buckets = TokenBuckets(
        inbound.observer_requests_per_s, inbound.observer_burst_requests, OBSERVER_BUCKETS_MAX
    )

    def route(path: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return await _serve(inbound, replay, buckets, path, request)

        return Route(path, endpoint, methods=["POST"])

    return Starlette(routes=[route(path) for path in PATHS])


async def _serve(
    inbound: Inbound, replay: ReplayCache, buckets: TokenBuckets, path: str, request: Request
) -> Response:
    """Authenticate, read, parse, handle, and sign the reply."""
    try:
        claim = parse_request_headers(request.headers)
    except WireRefusal as exc:  # nothing to bind a signature to: an unsigned refusal
        inbound.fault(exc.reason)
        return _json(_refusal(exc), 403)
    validators = inbound.allowed()
    allowed = validators | inbound.observers() if path in OBSERVER_PATHS else validators
    try:
        check_request(
            claim,
            chain_id=inbound.app.chain_id,
            path=path,
            own_key=inbound.key.public_hex,
            allowed=allowed,
            now_ms=clock.now_ms(),
            replay=replay,
        )
        if claim.sender not in validators:  # an observer: its bucket pays first
            wait_s = buckets.take({claim.sender: 1})
            if wait_s > 0:
                inbound.fault("observer_rate_limited")
                return await _signed(inbound, path, claim, _rate_limited(wait_s), 429)
        try:
            body = await _read_body(request, claim, inbound.body_max_bytes)
        except BaseException:  # the signed body never arrived intact: it did nothing
            replay.forget(claim.sender, claim.nonce)
            raise
        payload = open_payload(body)
    except WireRefusal as exc:
        inbound.fault(exc.reason)
        return await _signed(inbound, path, claim, _refusal(exc), 403)
    reply, status = await inbound.handle(path, claim.sender, payload)
    return await _signed(inbound, path, claim, reply, status)


def _rate_limited(wait_s: float) -> dict[str, Any]:
    return {
        "error": {
            "code": "rate_limited",
            "reason": "observer_rate_limited",
            "message": "this observer's P2P request rate is over its limit",
            "retry_after_s": max(1, math.ceil(wait_s)),
        }
    }


async def _signed(
    inbound: Inbound, path: str, claim: SignedRequest, obj: Any, status: int
) -> Response:
    body = orjson.dumps(obj)
    headers = await off_loop(
        inbound.key, sign_reply, inbound.key, inbound.app.chain_id, path, claim, status, body
    )
    return Response(body, status_code=status, media_type="application/json", headers=headers)
