"""Server-Sent Events: live block and record events, Last-Event-ID resume, filters,
the subscriber cap, and catch-up after a subscriber's queue overflows.

httpx's ASGITransport buffers whole responses, so streams are read from a
real uvicorn server on loopback serving one node's API; the cluster itself
still runs in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from node.events import EventFilter, EventHub, Subscription, stream
from tests.cluster import Cluster


@dataclass
class Sse:
    event: str
    id: str
    data: dict[str, Any]


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def read_events(response: httpx.Response) -> AsyncIterator[Sse]:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields and "event" in fields:
                yield Sse(fields["event"], fields.get("id", ""), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


async def collect(response: httpx.Response, until: set[str], timeout_s: float = 15) -> list[Sse]:
    """Events until every record id in ``until`` has been seen."""
    out: list[Sse] = []

    async def run() -> None:
        async for event in read_events(response):
            out.append(event)
            if until <= {e.data["id"] for e in out if e.event == "record"}:
                return

    await asyncio.wait_for(run(), timeout_s)
    return out


def position(event_id: str) -> tuple[int, int]:
    height, _, leaf = event_id.partition(":")
    return int(height), int(leaf) if leaf else -1


async def submit(cluster: Cluster, state: str, **fields: Any) -> str:
    response = await cluster.api[state].post("/v1/records", json=cluster.envelope(state, **fields))
    assert response.status_code == 202, response.text
    record_id: str = response.json()["id"]
    return record_id


async def test_live_events_then_resume_with_last_event_id(cluster: Cluster) -> None:
    async with serve(create_app(cluster.nodes["FR"])) as url, httpx.AsyncClient() as client:
        async with client.stream("GET", f"{url}/v1/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            ids = [await submit(cluster, s) for s in cluster.states]
            seen = await collect(response, set(ids))
        records = [e for e in seen if e.event == "record"]
        blocks = [e for e in seen if e.event == "block"]
        assert blocks and {e.data["id"] for e in records} == set(ids)
        assert [position(e.id) for e in seen] == sorted(position(e.id) for e in seen)
        for event in records:
            assert event.id == f"{event.data['height']}:{event.data['leaf_index']}"
            assert set(event.data) == {
                "id",
                "height",
                "leaf_index",
                "type",
                "actor_state",
                "territorial_states",
            }
        assert blocks[0].id == str(blocks[0].data["height"])
        header = cluster.nodes["FR"].store.get_header(blocks[0].data["height"])
        assert header is not None and blocks[0].data["hash"] == header.hash()

        resume_from = records[0]
        later = await submit(cluster, "TH")
        await cluster.nodes["FR"].wait_committed(later, 15)
        headers = {"Last-Event-ID": resume_from.id}
        async with client.stream("GET", f"{url}/v1/events", headers=headers) as response:
            replayed = await collect(response, {later})
        assert all(position(e.id) > position(resume_from.id) for e in replayed)
        expected = [e.data["id"] for e in records[1:]] + [later]
        assert [e.data["id"] for e in replayed if e.event == "record"] == expected


async def test_filters_replay_from_start_and_live(cluster: Cluster) -> None:
    ids = {s: await submit(cluster, s) for s in cluster.states}
    for record_id in ids.values():
        await cluster.nodes["FR"].wait_committed(record_id, 15)
    async with serve(create_app(cluster.nodes["FR"])) as url, httpx.AsyncClient() as client:
        params = {"state": "TH,VN", "type": "preservation_request", "last_event_id": "0"}
        async with client.stream("GET", f"{url}/v1/events", params=params) as response:
            live = await submit(cluster, "VN")
            await submit(cluster, "CN")  # filtered out
            seen = await collect(response, {ids["TH"], ids["VN"], live})
    records = [e for e in seen if e.event == "record"]
    # TH and VN were committed before we subscribed (their order is the chain's); live after.
    assert {e.data["id"] for e in records[:2]} == {ids["TH"], ids["VN"]}
    assert [e.data["id"] for e in records[2:]] == [live]
    assert {e.data["actor_state"] for e in records} == {"TH", "VN"}
    assert next(e.data["height"] for e in seen if e.event == "block") == 1


async def test_subscriber_cap_is_503_and_bad_event_id_is_400(cluster: Cluster) -> None:
    node = cluster.nodes["FR"]
    node.config = node.config.model_copy(
        update={"limits": node.config.limits.model_copy(update={"sse_subscribers_max": 1})}
    )
    async with serve(create_app(node)) as url, httpx.AsyncClient() as client:
        async with client.stream("GET", f"{url}/v1/events") as first:
            assert first.status_code == 200
            second = await client.get(f"{url}/v1/events")
            assert second.status_code == 503 and second.headers["retry-after"] == "5"
            assert second.json()["error"]["code"] == "too_many_subscribers"
        bad = await client.get(f"{url}/v1/events", headers={"Last-Event-ID": "x:1"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_event_id")
        for _ in range(200):  # the slot frees once the server sees the disconnect
            async with client.stream("GET", f"{url}/v1/events") as again:
                if again.status_code == 200:
                    break
            await asyncio.sleep(0.02)
        assert again.status_code == 200


async def test_overflowing_subscriber_catches_up_from_the_store(cluster: Cluster) -> None:
    node = cluster.nodes["FR"]
    hub = EventHub(10)
    node.add_commit_listener(hub.on_commit)
    sub: Subscription = hub.subscribe(EventFilter())
    sub.queue = asyncio.Queue(2)  # tiny, so the first block overflows it
    events = stream(hub, sub, node.store, node.app.load_envelope, None)
    ids = [await submit(cluster, s) for s in cluster.states * 2]
    for record_id in ids:
        await node.wait_committed(record_id, 15)
    assert sub.lagged
    got: list[str] = []
    async for event in events:
        if event.kind == "record":
            got.append(event.data["id"])
        if len(got) == len(ids):
            break
    committed = [
        rid for h in range(1, node.store.height + 1) for rid in node.store.get_block_record_ids(h)
    ]
    assert got == committed
    await events.aclose()  # type: ignore[attr-defined]
    assert len(hub) == 0


async def test_territorial_stream_shows_foreign_acts_on_the_states_territory(
    cluster: Cluster,
) -> None:
    """docs/DOMAIN.md: a state sees every act a foreign state records on its territory,
    the moment it commits (ACTS.md, sovereignty notices)."""
    async with serve(create_app(cluster.nodes["TH"])) as url, httpx.AsyncClient() as client:
        params = {"territorial_state": "TH", "foreign": "true"}
        async with client.stream("GET", f"{url}/v1/events", params=params) as response:
            own = await submit(cluster, "TH")  # TH's own act: not a notice
            elsewhere = await submit(cluster, "FR", territorial_states=["VN"])
            foreign = await submit(cluster, "CN")  # CN's act on TH's territory
            seen = await collect(response, {foreign})
    records = [e.data for e in seen if e.event == "record"]
    assert [r["id"] for r in records] == [foreign]
    assert records[0]["territorial_states"] == ["TH"] and records[0]["actor_state"] == "CN"
    assert own != foreign and elsewhere != foreign
