"""Authenticated P2P against real ``Node`` objects (findings M5, H1's P2P half, L2, C4).

The P2P app is called directly through ASGI, with a ``receive`` that counts
the body bytes the app pulls, and through the in-process cluster, whose
``Switch`` transport lets a stand-in answer at a peer's URL.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from api.p2p import create_p2p_app
from ledger.hashing import sha256_hex
from ledger.keys import SigningKey
from node.clock import now_ms
from node.peers import ReplyNotAuthentic
from node.runtime import Node
from node.wire import SignedRequest, reply_is_authentic, request_sign_bytes
from tests.cluster import Cluster, Switch

CHUNK = b" " * 65536
PREAUTH_READ_MAX = 64 * 1024


class Asgi:
    """One raw ASGI call: the body comes in ``chunks``; counts what the app reads."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.read = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    async def call(self, app: Any, path: str, headers: dict[str, str]) -> Asgi:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "client": ("198.51.100.7", 40000),
            "server": ("cn.p2p", 80),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        pending: list[bytes] = []

        async def receive() -> dict[str, Any]:
            chunk = pending.pop() if pending else next(self.chunks, None)
            if chunk is None:
                return {"type": "http.disconnect"}
            self.read += len(chunk)
            upcoming = next(self.chunks, None)
            if upcoming is not None:
                pending.append(upcoming)
            return {"type": "http.request", "body": chunk, "more_body": upcoming is not None}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                self.body += message.get("body", b"")

        await app(scope, receive, send)
        return self

    def json(self) -> Any:
        return orjson.loads(self.body)


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(4)  # nodes built, not started: the P2P app needs only their state


def _cn(cluster: Cluster) -> Node:
    return cluster.nodes["CN"]


async def test_an_unauthenticated_body_is_refused_before_it_is_read(cluster: Cluster) -> None:
    """H1: a stranger's 4 MiB body costs the node no more than the pre-auth limit."""
    stranger = SigningKey.generate()
    headers = {
        "x-comity-from": stranger.public_hex,
        "x-comity-signature": "00" * 64,
        "x-comity-to": _cn(cluster).key.public_hex,
        "x-comity-ts": "0",
        "x-comity-nonce": "00" * 16,
        "x-comity-body-sha256": "00" * 32,
    }
    call = await Asgi(_chunks(4 * 1024 * 1024)).call(
        create_p2p_app(_cn(cluster).inbound), "/p2p/v1/batch", headers
    )
    assert call.status == 403 and call.json()["error"]["code"] == "peer_fault"
    assert call.read <= PREAUTH_READ_MAX


def _signed_headers(
    cluster: Cluster, body: bytes, path: str = "/p2p/v1/batch", sender: str = "FR"
) -> tuple[dict[str, str], SignedRequest]:
    """Headers FR signs for ``body`` (of any size) to CN."""
    key = cluster.member(sender).node
    receiver = _cn(cluster).key.public_hex
    ts, nonce, digest = now_ms(), secrets.token_hex(16), sha256_hex(body)
    signature = key.sign(
        request_sign_bytes(cluster.chain_id, path, key.public_hex, receiver, ts, nonce, digest)
    ).hex()
    claim = SignedRequest(key.public_hex, receiver, ts, nonce, digest, signature)
    return claim.headers(), claim


async def test_an_authenticated_body_is_read_only_up_to_the_limit(cluster: Cluster) -> None:
    limit = _cn(cluster).config.limits.max_p2p_batch_bytes
    total = limit + 16 * len(CHUNK)
    big = CHUNK * (total // len(CHUNK))
    headers, _ = _signed_headers(cluster, big)
    app = create_p2p_app(_cn(cluster).inbound)
    streamed = await Asgi(_chunks(total)).call(app, "/p2p/v1/batch", headers)
    assert streamed.status == 403
    assert streamed.json()["error"]["reason"] == "wire_body_too_large"
    assert streamed.read <= limit + len(CHUNK)
    headers, _ = _signed_headers(cluster, big)
    declared = await Asgi(_chunks(total)).call(
        app, "/p2p/v1/batch", {**headers, "content-length": str(total)}
    )
    assert declared.json()["error"]["reason"] == "wire_body_too_large" and declared.read == 0


async def test_a_request_is_served_once(cluster: Cluster) -> None:
    node = _cn(cluster)
    app = create_p2p_app(node.inbound)
    headers, claim = _signed_headers(cluster, b"{}", "/p2p/v1/status")
    first = await Asgi(iter([b"{}"])).call(app, "/p2p/v1/status", headers)
    assert first.status == 200 and first.json() == {"height": 0, "state": "CN"}
    assert reply_is_authentic(
        node.key.public_hex,
        cluster.chain_id,
        "/p2p/v1/status",
        claim,
        200,
        first.body,
        first.headers,
    )
    again = await Asgi(iter([b"{}"])).call(app, "/p2p/v1/status", headers)
    assert again.status == 403 and again.json()["error"]["reason"] == "wire_replay"
    assert reply_is_authentic(
        node.key.public_hex,
        cluster.chain_id,
        "/p2p/v1/status",
        claim,
        403,
        again.body,
        again.headers,
    )  # refusals are signed too
    for_status, _ = _signed_headers(cluster, b"{}", "/p2p/v1/status")
    elsewhere = await Asgi(iter([b"{}"])).call(app, "/p2p/v1/batch", for_status)
    assert elsewhere.json()["error"]["reason"] == "wire_bad_signature"
    assert node.peer_faults == {"wire_replay": 1, "wire_bad_signature": 1}


async def test_a_body_altered_on_the_way_leaves_the_request_usable(cluster: Cluster) -> None:
    app = create_p2p_app(_cn(cluster).inbound)
    headers, _ = _signed_headers(cluster, b"{}", "/p2p/v1/status")
    altered = await Asgi(iter([b"{ }"])).call(app, "/p2p/v1/status", headers)
    assert altered.json()["error"]["reason"] == "wire_body_mismatch"
    genuine = await Asgi(iter([b"{}"])).call(app, "/p2p/v1/status", headers)
    assert genuine.status == 200


async def test_random_senders_do_not_grow_peer_faults(cluster: Cluster) -> None:
    """L2: 2,000 requests, each with a random ``from``, leave a bounded counter whose
    keys hold no sender id."""
    node = _cn(cluster)
    transport = httpx.ASGITransport(app=create_p2p_app(node.inbound))
    senders = [secrets.token_hex(32) for _ in range(2000)]
    async with httpx.AsyncClient(transport=transport, base_url="http://cn.p2p") as client:
        for sender in senders:
            body = orjson.dumps({"from": sender, "chain_id": "x", "ts_ms": 0, "items": []})
            reply = await client.post(
                "/p2p/v1/batch",
                content=body,
                headers={"x-comity-from": sender, "x-comity-signature": "00" * 64},
            )
            assert reply.status_code == 403
    assert sum(node.peer_faults.values()) == 2000
    assert len(node.peer_faults) <= 4
    keys = " ".join(node.peer_faults)
    assert not any(sender[:8] in keys for sender in senders)


class StandIn(httpx.AsyncBaseTransport):
    """What answers at VN's URL instead of VN's node: a huge height, unsigned, signed
    by a key that is not VN's, or VN's real reply with the height rewritten."""

    def __init__(self, mode: str, real: httpx.AsyncBaseTransport | None = None) -> None:
        self.mode, self.real = mode, real
        self.key = SigningKey.generate()
        self.answered = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.answered += 1
        if self.mode == "rewrite":
            assert self.real is not None
            genuine = await self.real.handle_async_request(request)
            await genuine.aread()
            body = orjson.loads(genuine.content)
            body["height"] = 10**9
            return httpx.Response(
                genuine.status_code, headers=genuine.headers, content=orjson.dumps(body)
            )
        headers = {"content-type": "application/json"}
        content = orjson.dumps({"height": 10**9, "state": "VN", "blocks": []})
        if self.mode == "stranger":
            headers |= {
                "x-comity-from": self.key.public_hex,
                "x-comity-signature": self.key.sign(content).hex(),
            }
        return httpx.Response(200, headers=headers, content=content)


@pytest.mark.parametrize("mode", ["unsigned", "stranger", "rewrite"])
async def test_a_reply_forged_at_a_peers_url_is_refused(mode: str) -> None:
    """M5/C4: whoever answers at VN's URL cannot make CN believe a height."""
    cluster = Cluster(4)
    await cluster.start()
    try:
        switch = cluster.transports["VN"]
        assert isinstance(switch, Switch)
        stand_in = StandIn(mode, real=switch.target)
        switch.target = stand_in
        cn = cluster.nodes["CN"]
        with pytest.raises(ReplyNotAuthentic):
            await cn.peers.request(cn.peers.peers["VN"], "/p2p/v1/status", {})
        response = await cluster.api["CN"].post("/v1/records", json=cluster.envelope("CN"))
        assert response.status_code == 202, response.text
        view = await cluster.api["CN"].get(
            f"/v1/records/{response.json()['id']}", params={"wait": 15}
        )
        assert view.json()["status"] == "committed"
        await asyncio.sleep(0.5)  # a few status polls (every 200 ms) and batches
        assert stand_in.answered > 3
        assert cn.peers.peers["VN"].stats.height < 1000
        assert not cn.sync.decided_elsewhere(cn.app.height + 1)
        assert not cn.status()["syncing"]
    finally:
        await cluster.stop()
