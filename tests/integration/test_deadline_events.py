"""The SSE ``deadline`` event on an in-process cluster: an emergency request enters its
warning window when it commits and becomes overdue on the timer, each announced once,
to the subscribers whose filters match its act; an executed answer stops it."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import httpx

from api.app import create_app
from ledger.records import format_time
from node import evidence
from node.clock import utcnow
from node.events import DEADLINE_LEAF_BASE, DeadlinePump, EventHub
from tests.cluster import Cluster
from tests.integration.test_api_events import Sse, position, read_events, serve


async def _until(response: httpx.Response, out: list[Sse], done: set[str]) -> None:
    async for event in read_events(response):
        out.append(event)
        if done <= {f"{e.data.get('id')}:{e.data.get('status')}" for e in out}:
            return


async def test_deadline_events_fire_once_on_commit_and_on_the_timer(cluster: Cluster) -> None:
    node = cluster.nodes["FR"]
    app = create_app(node)
    hub: EventHub = app.state.events
    hub.pump = DeadlinePump(hub, node.store, lambda: evidence.view_of(node.app), tick_s=0.2)
    cn = cluster.member("CN")
    async with serve(app) as url, httpx.AsyncClient(timeout=30) as client:
        wanted = f"{url}/v1/events?type=emergency_disclosure"
        other = f"{url}/v1/events?type=mla_request"
        async with client.stream("GET", wanted) as response, client.stream("GET", other) as rest:
            respond_by = utcnow() + timedelta(seconds=4)
            envelope = cluster.envelope(
                "CN",
                type_="emergency_disclosure",
                signer=cn.authority,
                respond_by=format_time(respond_by),
                justification="imminent threat to a victim",
            )
            reply = await cluster.api["CN"].post("/v1/records", json=envelope)
            assert reply.status_code == 202, reply.text
            act = reply.json()["id"]
            seen: list[Sse] = []
            done = {f"{act}:warning", f"{act}:overdue"}
            await asyncio.wait_for(_until(response, seen, done), 30)
            await asyncio.sleep(1)  # several more ticks: nothing is announced twice
            unrelated: list[Sse] = []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_until(rest, unrelated, {"never"}), 0.5)
    record = next(e for e in seen if e.event == "record" and e.data["id"] == act)
    fired = [e for e in seen if e.event == "deadline"]
    assert [(e.data["clock"], e.data["status"]) for e in fired] == [
        ("emergency_answer", "warning"),
        ("emergency_answer", "overdue"),
    ]
    assert position(record.id) < position(fired[0].id) < position(fired[1].id)
    assert all(position(e.id)[1] > DEADLINE_LEAF_BASE for e in fired)
    warning = fired[0].data
    assert (warning["id"], warning["acts"], warning["actor_state"]) == (act, [act], "CN")
    assert warning["due_at"] == format_time(respond_by)
    assert warning["source"].startswith("Second Additional Protocol")
    assert [e for e in unrelated if e.event == "deadline"] == []


async def test_a_final_answer_stops_the_clock_and_the_route_shows_it(cluster: Cluster) -> None:
    cn, th = cluster.member("CN"), cluster.member("TH")
    envelope = cluster.envelope(
        "CN",
        type_="emergency_disclosure",
        signer=cn.authority,
        respond_by=format_time(utcnow() + timedelta(hours=6)),
        justification="imminent threat to a victim",
    )
    reply = await cluster.api["CN"].post("/v1/records", json=envelope)
    act = reply.json()["id"]
    await cluster.nodes["TH"].wait_committed(act, 15)
    listed = await cluster.api["TH"].get("/v1/deadlines", params={"clock": "emergency_answer"})
    [item] = listed.json()["items"]
    assert (item["id"], item["status"], item["acts"]) == (act, "warning", [act])
    for status in ("received", "executed"):
        answer = cluster.envelope(
            "TH",
            type_="mla_response",
            signer=th.authority,
            refs=[act],
            status=status,
            territorial_states=["TH"],
        )
        reply = await cluster.api["TH"].post("/v1/records", json=answer)
        assert reply.status_code == 202, reply.text
        await cluster.nodes["TH"].wait_committed(reply.json()["id"], 15)
        shown = await cluster.api["TH"].get(
            "/v1/deadlines", params={"clock": "emergency_answer", "status": "warning,stopped"}
        )
        [item] = shown.json()["items"]
        assert item["status"] == ("warning" if status == "received" else "stopped")
    assert item["stopped_by"]["id"] == reply.json()["id"]
    bad = await cluster.api["TH"].get("/v1/deadlines", params={"status": "late"})
    error = bad.json()["error"]
    assert (bad.status_code, error["field"], error["code"]) == (400, "query.status", "bad_query")
