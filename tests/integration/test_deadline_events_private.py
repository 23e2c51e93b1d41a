"""The SSE ``deadline`` event of a private act over HTTP, on the 4-node cluster.

CN files a private emergency request about TH (parties CN and TH) due within its
12-hour warning window, then a public one. On TH's node, the subscriber with a TH
investigator's bearer token gets both clocks' warnings, and the private one is logged in
TH's access log as a read of the act; an anonymous subscriber and a token bound to
another case get the public one only; on FR's node (not a party, no body) a FR
investigator's token gets the public one only (docs/PRIVACY.md, "Deadline events").
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from ledger.acts_templates import template
from ledger.records import format_time
from node.access_log import AccessLog
from node.authoring import private_submission
from node.clock import utcnow
from node.tokens import create_token
from tests.cluster import Cluster
from tests.integration.test_api_events import Sse, read_events, serve

pytestmark = pytest.mark.cluster(on_disk=True)

CASE = "CN-SSE18-HTTP-1"


def _emergency(cluster: Cluster, case_ref: str) -> dict[str, Any]:
    cluster.nonce += 1
    now = utcnow()
    record = template("emergency_disclosure", state="CN", territorial_states=("TH",), now=now)
    record.update(
        chain_id=cluster.chain_id,
        nonce=f"sse18{cluster.nonce:012d}",
        actor={"state": "CN", "agency": "CN cybercrime unit"},
        case_ref=case_ref,
        respond_by=format_time(now + timedelta(hours=6)),
    )
    return record


async def _committed(cluster: Cluster, body: dict[str, Any]) -> str:
    reply = await cluster.api["CN"].post("/v1/records", json=body)
    assert reply.status_code == 202, reply.text
    record_id: str = reply.json()["id"]
    for state in ("TH", "FR"):
        await cluster.nodes[state].wait_committed(record_id, 15)
    return record_id


def _bearer(cluster: Cluster, state: str, cases: tuple[str, ...] = ()) -> dict[str, str]:
    data_dir = cluster.nodes[state].config.data_dir
    _, secret = create_token(data_dir, "investigator", f"{state} desk", state=state, cases=cases)
    return {"authorization": f"Bearer {secret}"}


async def _deadlines_until(response: httpx.Response, act: str) -> list[Sse]:
    """The stream's deadline events until the one of ``act``."""
    out: list[Sse] = []
    async for event in read_events(response):
        if event.event == "deadline":
            out.append(event)
            if event.data["id"] == act:
                return out
    return out


async def test_a_private_acts_deadline_reaches_its_partys_body_reader_only(
    cluster: Cluster,
) -> None:
    th_app, fr_app = create_app(cluster.nodes["TH"]), create_app(cluster.nodes["FR"])
    streams = {
        "party": ("TH", _bearer(cluster, "TH")),
        "anonymous": ("TH", {}),
        "other_case": ("TH", _bearer(cluster, "TH", ("TH-OTHER-9",))),
        "non_party": ("FR", _bearer(cluster, "FR")),
    }
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            "TH": await stack.enter_async_context(serve(th_app)),
            "FR": await stack.enter_async_context(serve(fr_app)),
        }
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        responses = {
            name: await stack.enter_async_context(
                client.stream("GET", f"{urls[node]}/v1/events", headers=headers)
            )
            for name, (node, headers) in streams.items()
        }
        retain = format_time(utcnow() + timedelta(days=30))
        private = await _committed(
            cluster,
            private_submission(
                cluster.member("CN").authority,
                _emergency(cluster, CASE),
                retain_until=retain,
                ref_parties=lambda ref: [],
            ),
        )
        public = await _committed(
            cluster,
            cluster.envelope(
                "CN",
                type_="emergency_disclosure",
                signer=cluster.member("CN").authority,
                case_ref="CN-CLEAR-1",
                respond_by=format_time(utcnow() + timedelta(hours=6)),
            ),
        )

        async def deadlines(name: str) -> list[Sse]:
            return await asyncio.wait_for(_deadlines_until(responses[name], public), 30)

        got: dict[str, Any] = dict(
            zip(streams, await asyncio.gather(*(deadlines(name) for name in streams)), strict=True)
        )
    shown = {
        name: [(e.data["id"], e.data["clock"], e.data["status"]) for e in events]
        for name, events in got.items()
    }
    clear = [(public, "emergency_answer", "warning")]
    assert shown == {
        "party": [(private, "emergency_answer", "warning"), *clear],
        "anonymous": clear,
        "other_case": clear,
        "non_party": clear,
    }
    sealed = got["party"][0].data
    assert (sealed["type"], sealed["case_ref"], sealed["acts"]) == (
        "emergency_disclosure",
        CASE,
        [private],
    )
    access_log: AccessLog = th_app.state.access_log
    assert [(e["record_id"], e["outcome"]) for e in access_log.page()] == [(private, "ok")]
    assert getattr(fr_app.state, "access_log", None) is None or fr_app.state.access_log.page() == []
