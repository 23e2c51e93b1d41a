"""Library errors become the tree's at the P2P boundary (node/peers.py).

``PeerSet.request`` raises only ``PeerUnavailable`` (not reached, timed out)
or another ``PeerFault`` (a reply that is refused, not JSON, not an object),
each chained ``from`` the httpx or orjson error; ``from_peer`` makes a check
failing on a peer's data that peer's fault, and lets local faults through.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from ledger.errors import (
    ChainError,
    EncodingError,
    InvariantViolation,
    PeerFault,
    PeerUnavailable,
    RecordInvalid,
    StoreError,
    from_peer,
)
from ledger.keys import SigningKey
from node.peers import PeerSet, ReplyNotAuthentic
from node.wire import parse_request_headers, sign_reply

PEER_KEY = SigningKey.generate()


def _peers() -> PeerSet:
    return PeerSet(
        SigningKey.generate(),
        "c",
        flush_ms=5,
        backoff_max_ms=100,
        queue_max=10,
        batch_bytes_max=1 << 20,
        request_timeout_ms=5000,
        on_height=lambda state, height: None,
    )


def _signed(status: int, body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    """A peer that answers ``body`` with ``status``, signed as it must be."""

    def answer(request: httpx.Request) -> httpx.Response:
        claim = parse_request_headers(request.headers)
        headers = sign_reply(PEER_KEY, "c", request.url.path, claim, status, body)
        return httpx.Response(status, content=body, headers=headers)

    return answer


def _raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


async def _ask(answer: Callable[[httpx.Request], httpx.Response]) -> BaseException:
    peers = _peers()
    peers.add("VN", "http://vn.p2p", PEER_KEY.public_hex, httpx.MockTransport(answer))
    try:
        with pytest.raises(PeerFault) as caught:
            await peers.request(peers.peers["VN"], "/p2p/v1/status", {"height": 0})
        return caught.value
    finally:
        await peers.stop()


async def test_a_signed_json_object_is_returned() -> None:
    peers = _peers()
    answer = _signed(200, orjson.dumps({"height": 7}))
    peers.add("VN", "http://vn.p2p", PEER_KEY.public_hex, httpx.MockTransport(answer))
    try:
        assert await peers.request(peers.peers["VN"], "/p2p/v1/status", {}) == {"height": 7}
    finally:
        await peers.stop()


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed the connection"),
        OSError("network is unreachable"),
    ],
)
async def test_a_transport_failure_is_peer_unavailable(error: Exception) -> None:
    raised = await _ask(_raising(error))
    assert type(raised) is PeerUnavailable
    assert raised.__cause__ is error
    assert "VN /p2p/v1/status" in str(raised)


async def test_a_reply_that_is_not_json_is_a_peer_fault() -> None:
    raised = await _ask(_signed(200, b"<html>not json</html>"))
    assert type(raised) is PeerFault
    assert isinstance(raised.__cause__, orjson.JSONDecodeError)
    assert "not JSON" in str(raised)


async def test_a_reply_that_is_not_an_object_is_a_peer_fault() -> None:
    raised = await _ask(_signed(200, b"[1, 2]"))
    assert type(raised) is PeerFault
    assert "not an object" in str(raised)


async def test_a_refusal_is_a_peer_fault_with_its_status() -> None:
    raised = await _ask(_signed(404, b'{"error": "no such block"}'))
    assert type(raised) is PeerFault
    assert "answered 404" in str(raised)


async def test_an_unsigned_reply_is_not_authentic() -> None:
    raised = await _ask(lambda request: httpx.Response(200, json={"height": 10**9}))
    assert type(raised) is ReplyNotAuthentic


async def test_a_reply_httpx_cannot_decode_is_a_peer_fault() -> None:
    raised = await _ask(_raising(httpx.DecodingError("bad gzip")))
    assert type(raised) is PeerFault
    assert isinstance(raised.__cause__, httpx.DecodingError)


@pytest.mark.parametrize(
    ("error", "parsing"),
    [
        (RecordInvalid("record.type is unknown", field="record.type"), False),
        (ChainError("block height 9, expected 3", height=9, expected=3, actual=9), False),
        (EncodingError("header must be an object"), True),
        (KeyError("block"), True),
        (TypeError("'int' object is not iterable"), True),
        (ValueError("bad hex"), True),
    ],
)
def test_a_check_failing_on_peer_data_is_that_peers_fault(error: Exception, parsing: bool) -> None:
    with pytest.raises(PeerFault) as caught, from_peer("VN", "block 3", parsing=parsing):
        raise error
    assert type(caught.value) is PeerFault
    assert caught.value.__cause__ is error
    assert str(caught.value).startswith("block 3 from VN: ")


@pytest.mark.parametrize("error", [KeyError("x"), TypeError("y"), ValueError("z")])
def test_outside_parsing_a_python_error_stays_a_local_bug(error: Exception) -> None:
    with pytest.raises(type(error)), from_peer("VN", "block 3"):
        raise error


@pytest.mark.parametrize(
    "error", [StoreError("disk gone"), InvariantViolation("height went backwards")]
)
def test_a_local_fault_is_never_blamed_on_the_peer(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, from_peer("VN", "block 3", parsing=True):
        raise error
    assert caught.value is error


def test_a_peer_fault_passes_unchanged() -> None:
    fault = PeerUnavailable("gone")
    with pytest.raises(PeerUnavailable) as caught, from_peer("VN", "block 3", parsing=True):
        raise fault
    assert caught.value is fault
