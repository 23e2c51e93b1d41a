"""Every limit, exceeded on a real node process (127.0.0.1): a clear 4xx/503, no growth.

CN runs alone in a 4-state consortium, so it has no quorum and nothing it
accepts ever commits: its mempool can only fill. The limits are set low in
its node.toml so each test exceeds one with a few requests.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.procnet import ProcNet

pytestmark = pytest.mark.slow

PENDING_MAX = 20
GOVERNANCE_RESERVE = 1  # 5 % of the pool, at least one record (node/mempool.py)
REQUEST_BYTES_MAX = 128 * 1024
BATCH_MAX = 10
SSE_MAX = 3
P2P_CONNECTIONS_MAX = 2048  # uvicorn limit_concurrency in api/serve.py


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcNet]:
    net = ProcNet(tmp_path_factory.mktemp("limits") / "net")
    with (net.root / "CN" / "node.toml").open("a") as config:
        config.write(
            f"\n[limits]\nmax_pending_records = {PENDING_MAX}\n"
            f"max_request_bytes = {REQUEST_BYTES_MAX}\n"
            f"max_batch_records = {BATCH_MAX}\nsse_subscribers_max = {SSE_MAX}\n"
            "long_poll_max_s = 1\n"
            # One signer may fill its state's share: the clients' share is
            # what this file exceeds (signer quotas: test_admission.py).
            "mempool_signer_share_percent = 100\n"
        )
    net.start("CN")
    try:
        yield net
    finally:
        net.stop_all()


def _error(reply: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = reply.json()["error"]
    return error


def test_request_body_over_the_limit_is_413(net: ProcNet) -> None:
    url = f"{net.urls['CN']}/v1/records"
    reply = httpx.post(
        url,
        content=b"{" + b" " * REQUEST_BYTES_MAX + b"}",
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 413 and _error(reply)["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for _ in range(REQUEST_BYTES_MAX // 8192 + 2):
            yield b" " * 8192

    reply = httpx.post(url, content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and _error(reply)["code"] == "body_too_large"


def test_record_over_the_consortium_limit_is_413(net: ProcNet) -> None:
    envelope = net.envelope("CN")
    envelope["record"]["note"] = "x" * (64 * 1024)  # genesis max_record_bytes is 64 KiB
    reply = httpx.post(f"{net.urls['CN']}/v1/records", json=envelope)
    assert reply.status_code == 413 and _error(reply)["code"] == "record_too_large"


def test_batch_over_the_limit_is_413_and_admits_nothing(net: ProcNet) -> None:
    before = net.status("CN")["mempool"]["records"]
    body = {"envelopes": [net.envelope("CN") for _ in range(BATCH_MAX + 1)]}
    reply = httpx.post(f"{net.urls['CN']}/v1/records/batch", json=body)
    assert reply.status_code == 413 and _error(reply)["code"] == "batch_too_large"
    assert net.status("CN")["mempool"]["records"] == before


def test_long_poll_is_capped(net: ProcNet) -> None:
    pending = net.submit("CN")  # no quorum: it stays pending
    started = time.monotonic()
    reply = httpx.get(f"{net.urls['CN']}/v1/records/{pending}", params={"wait": 600}, timeout=30)
    assert reply.status_code == 200 and reply.json()["status"] == "pending"
    assert time.monotonic() - started < 5


def test_full_mempool_is_503_with_retry_after_and_stays_bounded(net: ProcNet) -> None:
    url = f"{net.urls['CN']}/v1/records"
    # The clients' share of CN's pool: the general lane (all but the governance
    # reserve) divided among the four nodes.
    share = (PENDING_MAX - GOVERNANCE_RESERVE) // len(net.states)
    before = net.status("CN")["mempool"]["records"]  # earlier tests' pending records
    statuses = [
        httpx.post(url, json=net.envelope("CN")).status_code for _ in range(PENDING_MAX + 5)
    ]
    assert statuses.count(202) == share - before and 503 in statuses
    reply = httpx.post(url, json=net.envelope("CN"))
    assert reply.status_code == 503 and _error(reply)["code"] == "mempool_full"
    assert int(reply.headers["retry-after"]) >= 1
    batch = httpx.post(f"{url}/batch", json={"envelopes": [net.envelope("CN")]})
    assert batch.status_code == 503 and _error(batch)["code"] == "mempool_full"
    assert int(batch.headers["retry-after"]) >= 1
    # Clients fill their node's share (one of the nodes' gossip); the rest is for peers'.
    assert net.status("CN")["mempool"]["records"] == share


def test_sse_subscribers_over_the_limit_get_503(net: ProcNet) -> None:
    url = f"{net.urls['CN']}/v1/events"
    with httpx.Client(timeout=10) as client:
        streams = [client.stream("GET", url) for _ in range(SSE_MAX)]
        opened = [s.__enter__() for s in streams]
        try:
            assert all(r.status_code == 200 for r in opened)
            extra = httpx.get(url, timeout=10)
            assert extra.status_code == 503
            assert _error(extra)["code"] == "too_many_subscribers"
            assert int(extra.headers["retry-after"]) >= 1
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    deadline = time.monotonic() + 10  # closed streams free their slots
    while time.monotonic() < deadline:
        with httpx.stream("GET", url, timeout=10) as again:
            if again.status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("subscriber slots were not freed")


def test_p2p_connections_over_the_limit_get_503(net: ProcNet) -> None:
    host, port = net.rows[0]["p2p_url"].removeprefix("http://").split(":")
    held: list[socket.socket] = []
    try:
        for _ in range(P2P_CONNECTIONS_MAX + 16):  # slow bodies that never finish
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(b"POST /p2p/v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            held.append(sock)
        reply = httpx.post(f"{net.rows[0]['p2p_url']}/p2p/v1/status", content=b"{}", timeout=30)
        assert reply.status_code == 503
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 20  # the node recovers once they are gone
    while time.monotonic() < deadline:
        reply = httpx.post(f"{net.rows[0]['p2p_url']}/p2p/v1/status", content=b"{}", timeout=10)
        if reply.status_code == 403:  # served again (and refused: unsigned)
            break
        time.sleep(0.2)
    assert reply.status_code == 403
    assert httpx.get(f"{net.urls['CN']}/healthz", timeout=5).status_code == 200
