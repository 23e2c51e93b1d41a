"""Deadline events of private acts (node/events.py, docs/PRIVACY.md "Deadline events"):
a party's body reader gets them, each logged as a read of the act; an anonymous
subscriber, a token bound to another case, a revoked token and a non-party's node do not;
the clear events go to everyone as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from fastapi import FastAPI, Request

from api.routers.events import body_reader
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.private import split
from ledger.records import Envelope, format_time, parse_envelope, parse_time
from node import deadlines, evidence
from node.access_log import AccessLog, open_access_log
from node.clock import utcnow
from node.events import BodyReader, DeadlinePump, Event, EventFilter, EventHub, stream
from node.evidence import ChainView
from node.runtime import Node
from node.tokens import TokenStore, create_token, revoke_token, tokens_path
from tests.unit.test_governance import Chain
from tests.unit.test_private_app import _commit_as

CASE = "CN-SSE18-0001"


def _emergency(chain: Chain, *, private: bool) -> tuple[Envelope, dict[str, Any] | None]:
    """An emergency request by CN about TH (parties CN, TH), due in a day."""
    key = chain.keys("CN").authority
    clear = chain.env("CN", key, "emergency_disclosure", case_ref=CASE).record
    if not private:
        return chain.env("CN", key, "emergency_disclosure", case_ref="CN-CLEAR-1"), None
    clear.pop("visibility", None)
    until = format_time(utcnow() + timedelta(days=30))
    header, body = split(clear, retain_until=until, ref_parties=lambda ref: [])
    envelope = parse_envelope(
        {
            "record": header,
            "signer": key.public_hex,
            "signature": key.sign(canonical_bytes(header)).hex(),
        }
    )
    return envelope, body


def _chain(me: str) -> tuple[Chain, Envelope, Envelope, datetime]:
    """A chain seen from ``me``'s node: one public and one private emergency request,
    and a time at which both clocks are in their 12-hour warning window."""
    chain = Chain()
    chain.app.me = me
    public, _ = _emergency(chain, private=False)
    private, body = _emergency(chain, private=True)
    if me in ("CN", "TH"):
        assert body is not None
        chain.app.bodies.put(private.id, body)
    for envelope in (public, private):
        chain.app.check_record(envelope, utcnow())
        _commit_as(chain, envelope)
    due = parse_time(str(public.content["respond_by"]), "respond_by")
    return chain, public, private, due - timedelta(hours=1)


def _pump(chain: Chain, hub: EventHub, at: datetime) -> DeadlinePump:
    def private_view() -> ChainView:
        return ChainView(chain.store, chain.app.load_content, private=True)

    pump = DeadlinePump(
        hub,
        chain.store,
        lambda: evidence.view_of(chain.app),
        now=lambda: at,
        private_view=private_view,
    )
    hub.pump = pump
    return pump


def _reader(
    tmp_path: Path, access_log: AccessLog, state: str, role: str, cases: tuple[str, ...] = ()
) -> tuple[str, BodyReader]:
    token_id, secret = create_token(tmp_path, role, f"{state} {role}", state=state, cases=cases)
    tokens = TokenStore(tokens_path(tmp_path))
    token = tokens.authenticate(secret)
    assert token is not None

    def logged(record_id: str, live: Any) -> None:
        access_log.append(record_id=record_id, state=state, token=live, outcome="ok")

    return token_id, BodyReader(token, state, tokens.current, logged)


def _queued(sub: Any) -> list[Event]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def _deadlines(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.data["id"], e.data["clock"], e.data["status"]) for e in events]


async def test_only_a_partys_body_reader_gets_a_private_acts_deadline(tmp_path: Path) -> None:
    chain, public, private, at = _chain("TH")
    access_log = open_access_log(tmp_path, SigningKey.generate())
    hub = EventHub(10)
    pump = _pump(chain, hub, at)
    _, party = _reader(tmp_path, access_log, "TH", "investigator")
    _, other_case = _reader(tmp_path, access_log, "TH", "investigator", ("TH-OTHER-9",))
    _, its_case = _reader(tmp_path, access_log, "TH", "auditor", (CASE,))
    subs = {
        "anonymous": hub.subscribe(EventFilter()),
        "party": hub.subscribe(EventFilter(), party),
        "other_case": hub.subscribe(EventFilter(), other_case),
        "its_case": hub.subscribe(EventFilter(), its_case),
        "other_type": hub.subscribe(EventFilter(types=frozenset({"mla_request"})), party),
    }
    pump.step()
    got = {name: _deadlines(_queued(sub)) for name, sub in subs.items()}
    clear = [(public.id, "emergency_answer", "warning")]
    sealed = [(private.id, "emergency_answer", "warning")]
    assert got == {
        "anonymous": clear,
        "party": clear + sealed,
        "other_case": clear,
        "its_case": clear + sealed,
        "other_type": [],
    }
    assert access_log.page() == []  # offered only; the read is logged when it is sent
    pump.step()  # announced once
    assert [_queued(sub) for sub in subs.values()] == [[]] * len(subs)


async def test_the_event_is_logged_when_sent_and_shows_no_more_than_the_route(
    tmp_path: Path,
) -> None:
    chain, public, private, at = _chain("TH")
    access_log = open_access_log(tmp_path, SigningKey.generate())
    hub = EventHub(10)
    pump = _pump(chain, hub, at)
    token_id, party = _reader(tmp_path, access_log, "TH", "investigator")
    sub = hub.subscribe(EventFilter(), party)
    source = stream(hub, sub, chain.store, chain.app.load_envelope, None)
    pump.step()
    first = await asyncio.wait_for(anext(source), 5)
    second = await asyncio.wait_for(anext(source), 5)
    assert (first.data["id"], second.data["id"]) == (public.id, private.id)
    [entry] = access_log.page()
    assert (entry["record_id"], entry["token_id"], entry["outcome"]) == (private.id, token_id, "ok")
    route = deadlines.deadlines(
        ChainView(chain.store, chain.app.load_content, private=True),
        at,
        clocks=frozenset({"emergency_answer"}),
    )
    assert second.data == next(i for i in route["items"] if i["id"] == private.id)
    assert second.data["type"] == "emergency_disclosure" and second.data["case_ref"] == CASE
    assert isinstance(source, AsyncGenerator)
    await source.aclose()  # unsubscribes
    assert len(hub) == 0


async def test_a_revoked_token_gets_no_more_private_events(tmp_path: Path) -> None:
    chain, _, private, at = _chain("TH")
    access_log = open_access_log(tmp_path, SigningKey.generate())
    hub = EventHub(10)
    pump = _pump(chain, hub, at)
    token_id, party = _reader(tmp_path, access_log, "TH", "investigator")
    sub = hub.subscribe(EventFilter(), party)
    pump.step()
    queued = [e for e in _queued(sub) if e.private]
    assert _deadlines(queued) == [(private.id, "emergency_answer", "warning")]
    revoke_token(tmp_path, token_id)
    assert not party.reveal(queued[0])  # queued before, sent after: refused at the send
    assert access_log.page() == []
    pump.watch.seen.clear()
    pump.private_watch.seen.clear()
    pump.step()
    assert [e for e in _queued(sub) if e.private] == []


def _counting(view: Callable[[], ChainView]) -> tuple[Callable[[], ChainView], list[int]]:
    calls: list[int] = []

    def counted() -> ChainView:
        calls.append(1)
        return view()

    return counted, calls


async def test_a_non_party_node_computes_no_private_deadline(tmp_path: Path) -> None:
    chain, public, private, at = _chain("FR")
    assert chain.app.load_content(private.id).type == "private_act"
    access_log = open_access_log(tmp_path, SigningKey.generate())
    hub = EventHub(10)
    pump = _pump(chain, hub, at)
    _, reader = _reader(tmp_path, access_log, "FR", "investigator")
    sub = hub.subscribe(EventFilter(), reader)
    events = pump.step()
    assert _deadlines(events) == [(public.id, "emergency_answer", "warning")]
    assert [e.private for e in events] == [False]
    assert _deadlines(_queued(sub)) == [(public.id, "emergency_answer", "warning")]


async def test_without_a_body_reader_the_private_class_is_not_computed(tmp_path: Path) -> None:
    chain, public, _, at = _chain("TH")
    hub = EventHub(10)
    pump = _pump(chain, hub, at)
    assert pump.private_view is not None
    pump.private_view, calls = _counting(pump.private_view)
    anonymous = hub.subscribe(EventFilter())
    assert _deadlines(pump.step()) == [(public.id, "emergency_answer", "warning")]
    assert calls == []
    assert _deadlines(_queued(anonymous)) == [(public.id, "emergency_answer", "warning")]


def _request(app: FastAPI, authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "headers": headers, "app": app})


def test_the_route_gives_a_body_reader_only_to_a_token_that_may_read_bodies(
    tmp_path: Path,
) -> None:
    app = FastAPI()
    app.state.tokens = TokenStore(tokens_path(tmp_path))
    node = cast(Node, SimpleNamespace(config=SimpleNamespace(state="TH")))
    access_log = open_access_log(tmp_path, SigningKey.generate())

    def secret(role: str, state: str, cases: tuple[str, ...] = ()) -> str:
        return create_token(tmp_path, role, role, state=state, cases=cases)[1]

    refused = {
        "no header": None,
        "not bearer": f"Basic {secret('investigator', 'TH')}",
        "unknown token": "Bearer cmt_0000_nope",
        "operator": f"Bearer {secret('operator', 'TH')}",
        "auditor of all cases": f"Bearer {secret('auditor', 'TH')}",
        "another state's": f"Bearer {secret('investigator', 'FR')}",
    }
    for why, header in refused.items():
        assert body_reader(_request(app, header), node, access_log) is None, why
    reader = body_reader(_request(app, f"Bearer {secret('authority', 'TH')}"), node, access_log)
    assert reader is not None and (reader.token.role, reader.state) == ("authority", "TH")
