"""A peer's reply is read only up to the largest honest reply (finding L6, P2P side):
whoever answers at a peer's URL cannot make a node buffer without bound."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ledger.errors import PeerUnavailable
from ledger.keys import SigningKey
from node.peers import PeerSet, ReplyTooLarge

CHUNK = 64 * 1024


class _Endless(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < 1 << 30:
            self.sent += CHUNK
            yield b" " * CHUNK


class _Flooder(httpx.AsyncBaseTransport):
    def __init__(self, declare: bool) -> None:
        self.stream = _Endless()
        self.declare = declare

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = {"content-length": str(1 << 30)} if self.declare else {}
        return httpx.Response(200, headers=headers, stream=self.stream)


@pytest.mark.parametrize("declare", [True, False])
async def test_an_oversized_reply_is_refused_without_being_read(declare: bool) -> None:
    peers = PeerSet(
        SigningKey.generate(),
        "c",
        flush_ms=5,
        backoff_max_ms=100,
        queue_max=10,
        batch_bytes_max=1 << 20,
        request_timeout_ms=5000,
        on_height=lambda state, height: None,
        reply_bytes_max=1 << 20,
    )
    transport = _Flooder(declare)
    peers.add("VN", "http://vn.p2p", SigningKey.generate().public_hex, transport)
    try:
        with pytest.raises(ReplyTooLarge):
            await peers.request(peers.peers["VN"], "/p2p/v1/status", {"height": 0})
        assert transport.stream.sent <= (0 if declare else (1 << 20) + CHUNK)
    finally:
        await peers.stop()


async def test_a_removed_peer_is_a_transport_error_not_a_crash() -> None:
    """Block sync held a peer that a membership change removed: its poll raised
    RuntimeError (a closed httpx client) and killed the sync task (found by the
    whole-node simulation, governance removal). It is a transport failure now:
    ``PeerUnavailable``, which block sync catches as a ``PeerFault``."""
    peers = PeerSet(
        SigningKey.generate(),
        "c",
        flush_ms=5,
        backoff_max_ms=100,
        queue_max=10,
        batch_bytes_max=1 << 20,
        request_timeout_ms=5000,
        on_height=lambda state, height: None,
    )
    peers.add("VN", "http://vn.p2p", SigningKey.generate().public_hex, _Flooder(True))
    held = peers.peers["VN"]
    await peers.remove("VN")
    with pytest.raises(PeerUnavailable):
        await peers.request(held, "/p2p/v1/status", {"height": 0})
