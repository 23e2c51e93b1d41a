"""api/serve.py: a node process tunes its interpreter (``tune_runtime``), and the P2P
listener caps the requests one address has in flight (``PerClientLimit``)."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from api import serve


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("restored")
def test_a_node_process_collects_full_generations_rarely() -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    serve.tune_runtime()
    assert gc.get_threshold() == serve.GC_THRESHOLDS
    young, middle, old = serve.GC_THRESHOLDS
    # Full collections walk the whole heap: they must be far rarer than with the
    # defaults (every 700 * 10 * 10 allocations), and young ones not disabled.
    assert young > 0 and young * middle * old >= 100 * 700 * 10 * 10
    assert sys.getswitchinterval() == pytest.approx(serve.SWITCH_INTERVAL_S)


async def test_the_p2p_listener_caps_requests_in_flight_per_address() -> None:
    """One address cannot hold more than its share of the P2P listener at once."""
    release = asyncio.Event()
    entered: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        entered.append(scope["client"][0])
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    limited = serve.PerClientLimit(app, 2)

    async def call(host: str) -> int:
        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        await limited({"type": "http", "client": (host, 1)}, receive, send)
        return status[0]

    tasks = [
        asyncio.create_task(call(h))
        for h in (
            "203.0.113.9",
            "203.0.113.9",
            "198.51.100.1",
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1",
        )
    ]
    await asyncio.sleep(0.01)
    assert await call("203.0.113.9") == 503  # its third, while two are open
    release.set()
    assert await asyncio.gather(*tasks) == [200] * 6  # loopback is never capped
    assert limited.in_flight == {}
    assert await call("203.0.113.9") == 200
