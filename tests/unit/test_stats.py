"""Statistics for central authorities (node/stats.py, GET /v1/stats; issue 19 item 4).

The figures of the scripted 50-request scenario (tests/unit/stats_scenario.py) are
counted by hand below, from the hours the scenario lists; none is recomputed with
the code under test. Percentiles: the median is the middle value (the mean of the
two middle ones for an even count), p90 the nearest rank ceil(0.9 n)
(docs/STATISTICS.md "Definitions").
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from ledger.acts_lifecycle import ANSWERS
from ledger.records import format_time
from node import stats
from node.evidence import ChainView, view_of
from node.runtime import Node
from node.stats import nearest_rank, statistics, statistics_csv
from node.tokens import create_token
from tests.cluster import Cluster
from tests.unit.stats_scenario import AT, T0, Builder, H, build

DOC = Path(__file__).resolve().parents[2] / "docs" / "STATISTICS.md"


def _figures(
    requests: int,
    answered: int,
    final: int,
    first: tuple[float, float, float] | None,
    last: tuple[float, float, float] | None,
    backlog: int,
    oldest: float | None,
) -> dict[str, Any]:
    def hours(values: tuple[float, float, float] | None) -> dict[str, float | None]:
        median, p90, mean = values or (None, None, None)
        return {"median": median, "p90": p90, "mean": mean}

    return {
        "requests": requests,
        "answered": answered,
        "final": final,
        "first_answer_hours": hours(first),
        "final_answer_hours": hours(last),
        "backlog": backlog,
        "backlog_oldest_hours": oldest,
    }


# Group A (TH, Budapest, mla_request): first answers 1,1,1,1,5,5,5,5,50,60,...,120
# (16; median (5+50)/2, rank ceil(14.4)=15 is 110, sum 704); finals 10,20,...,120
# (12; median (60+70)/2, rank 11 is 110, sum 780); backlog k 12-19, oldest 1000-12.
A = _figures(20, 16, 12, (27.5, 110.0, 44.0), (65.0, 110.0, 65.0), 8, 988.0)
# Group B (VN, UNTOC, mla_request) at hour 1000 (k 29's answer comes at 1100): first
# 12,12,24,48,72,96,120 (7; 4th is 48, rank 7 is 120, 384/7); finals 24,48,72,96,120,
# 200 (6; (72+96)/2, rank 6 is 200, 560/6); backlog k 26-29, oldest 1000-26.
B = _figures(10, 7, 6, (48.0, 120.0, 54.857), (84.0, 200.0, 93.333), 4, 974.0)
# Group C (FR, Budapest, preservation_request): first = final = 2,3,4,6,8,10,12
# (7; 4th is 6, rank 7 is 12, 45/7); backlog k 37-39, oldest 1000-37.
C = _figures(10, 7, 7, (6.0, 12.0, 6.429), (6.0, 12.0, 6.429), 3, 963.0)
# Group D (TH, no instrument, eio): first 4 (x6), 50 (7; 4th is 4, rank 7 is 50,
# 74/7); finals 50,100,200,300,400 (5; 3rd is 200, rank ceil(4.5)=5 is 400, 1050/5);
# backlog k 44, 45, 47-49, oldest 1000-44.
D = _figures(10, 7, 5, (4.0, 50.0, 10.571), (200.0, 400.0, 210.0), 5, 956.0)
# TH = A + D: first 1 x4, 4 x6, 5 x4, 50, 50, 60, 70, ..., 120 (23; 12th is 5, rank
# ceil(20.7)=21 is 100, 778/23); finals 10,20,30,40,50,50,60,70,80,90,100,100,110,120,
# 200,300,400 (17; 9th is 80, rank ceil(15.3)=16 is 300, 1830/17).
TH = _figures(30, 23, 17, (5.0, 100.0, 33.826), (80.0, 300.0, 107.647), 13, 988.0)
# Budapest = A + C: first 1 x4, 2, 3, 4, 5 x4, 6, 8, 10, 12, 50, 60, ..., 120 (23;
# 12th is 6, 21st is 100, 749/23); finals 2,3,4,6,8,10,10,12,20,30,...,120 (19; 10th
# is 30, rank ceil(17.1)=18 is 110, 825/19).
BUDAPEST = _figures(30, 23, 19, (6.0, 100.0, 32.565), (30.0, 110.0, 43.421), 11, 988.0)
# mla_request = A + B: first 1 x4, 5 x4, 12, 12, 24, 48, 50, 60, 70, 72, 80, 90, 96, 100,
# 110, 120, 120 (23; 12th is 48, 21st is 110, 1088/23); finals 10,20,24,30,40,48,50,60,
# 70,72,80,90,96,100,110,120,120,200 (18; (70+72)/2, rank ceil(16.2)=17 is 120,
# 1340/18).
MLA = _figures(30, 23, 18, (48.0, 110.0, 47.304), (71.0, 120.0, 74.444), 12, 988.0)
# All 50: first answers (37) sorted 1 x4, 2, 3, 4 x7, 5 x4, 6, 8, ...: the 19th is 8,
# rank ceil(33.3)=34 is 100, 1207/37; finals (30): the 15th and 16th are 50 and 60,
# rank 27 is 200, 2435/30; backlog 8+4+3+5.
OVERALL = _figures(50, 37, 30, (8.0, 100.0, 32.622), (55.0, 200.0, 81.167), 20, 988.0)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    cluster = Cluster(4)
    node = cluster.nodes["CN"]
    build(Builder(node.app, cluster.members))
    yield node


def _stats(node: Node, **kwargs: Any) -> dict[str, Any]:
    return statistics(view_of(node.app), kwargs.pop("at", AT), **kwargs)


# --- the scenario, counted by hand --------------------------------------------------------


def test_overall_over_the_fifty_requests(node: Node) -> None:
    result = _stats(node, group_by=("state",))
    assert result["overall"] == OVERALL
    assert (result["at"], result["from"], result["to"]) == (format_time(AT), None, None)
    assert result["truncated"] is False


def test_by_requested_state(node: Node) -> None:
    groups = _stats(node, group_by=("state",))["groups"]
    assert groups == [{"state": "FR", **C}, {"state": "TH", **TH}, {"state": "VN", **B}]


def test_by_instrument_written_three_ways_and_absent(node: Node) -> None:
    groups = _stats(node, group_by=("instrument",))["groups"]
    assert groups == [
        {"instrument": None, **D},
        {"instrument": "budapest", **BUDAPEST},
        {"instrument": "untoc", **B},
    ]


def test_by_type(node: Node) -> None:
    groups = _stats(node, group_by=("type",))["groups"]
    assert groups == [
        {"type": "eio", **D},
        {"type": "mla_request", **MLA},
        {"type": "preservation_request", **C},
    ]


def test_by_state_instrument_and_type_together(node: Node) -> None:
    result = _stats(node)  # the default: all three
    assert result["group_by"] == ["state", "instrument", "type"]
    assert result["groups"] == [
        {"state": "FR", "instrument": "budapest", "type": "preservation_request", **C},
        {"state": "TH", "instrument": None, "type": "eio", **D},
        {"state": "TH", "instrument": "budapest", "type": "mla_request", **A},
        {"state": "VN", "instrument": "untoc", "type": "mla_request", **B},
    ]


CSV = (
    "row,state,instrument,type,requests,answered,final,first_answer_median_hours,"
    "first_answer_p90_hours,first_answer_mean_hours,final_answer_median_hours,"
    "final_answer_p90_hours,final_answer_mean_hours,backlog,backlog_oldest_hours\r\n"
    "overall,*,*,*,50,37,30,8.0,100.0,32.622,55.0,200.0,81.167,20,988.0\r\n"
    "group,FR,budapest,preservation_request,10,7,7,6.0,12.0,6.429,6.0,12.0,"
    "6.429,3,963.0\r\n"
    "group,TH,,eio,10,7,5,4.0,50.0,10.571,200.0,400.0,210.0,5,956.0\r\n"
    "group,TH,budapest,mla_request,20,16,12,27.5,110.0,44.0,65.0,110.0,65.0,"
    "8,988.0\r\n"
    "group,VN,untoc,mla_request,10,7,6,48.0,120.0,54.857,84.0,200.0,93.333,4,974.0\r\n"
)


def test_csv_has_fixed_columns_and_an_overall_row(node: Node) -> None:
    assert statistics_csv(_stats(node)) == CSV
    by_type = statistics_csv(_stats(node, group_by=("type",))).splitlines()
    assert by_type[0] == CSV.splitlines()[0]
    assert by_type[2].startswith("group,*,*,eio,10,")


def test_the_window_selects_requests_by_block_time(node: Node) -> None:
    result = _stats(node, start=T0 + 20 * H, end=T0 + 30 * H, group_by=("state",))
    assert result["overall"] == B and result["groups"] == [{"state": "VN", **B}]
    assert result["from"] == "2026-03-02T20:00:00.000Z"
    empty = _stats(node, start=T0 + 20 * H, end=T0 + 20 * H)
    assert empty["overall"] == _figures(0, 0, 0, None, None, 0, None) and empty["groups"] == []


def test_at_a_later_time_the_late_answer_counts(node: Node) -> None:
    # At hour 1200, k 29's answer (hour 1100, 1071 h after it) is in: first answers
    # 12,12,24,48,72,96,120,1071 (median (48+72)/2, rank 8 is 1071, 1455/8); finals
    # 24,48,72,96,120,200,1071 (4th is 96, rank 7 is 1071, 1631/7); backlog k 26-28.
    result = _stats(node, at=T0 + 1200 * H, group_by=("state",))
    assert result["groups"][2] == {
        "state": "VN",
        **_figures(10, 8, 7, (60.0, 1071.0, 181.875), (96.0, 1071.0, 233.0), 3, 1174.0),
    }


def test_before_any_answer_every_request_is_backlog(node: Node) -> None:
    result = _stats(node, at=T0 + H / 2)  # only request 0 is committed
    assert result["overall"] == _figures(1, 0, 0, None, None, 1, 0.5)


def test_the_scan_bound_says_truncated(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    # 15 records for the requests: the 10 eio (types in name order), then 5 mla_request;
    # the other 15 for the answers: the 13 eio_response, then 2 mla_response.
    monkeypatch.setattr(stats, "SCAN_RECORDS_MAX", 30)
    result = _stats(node, group_by=("type",))
    assert result["truncated"] is True and result["overall"]["requests"] == 15
    assert result["groups"][0] == {"type": "eio", **D}  # its answers were all read
    assert result["groups"][1]["requests"] == 5


# --- what counts -------------------------------------------------------------------------


def test_every_request_the_lifecycle_answers_has_requested_states() -> None:
    assert set(stats.REQUESTED_STATES) == set().union(*ANSWERS.values())
    assert stats.ANSWER_TYPES_OF["mla_request"] == ("mla_response",)
    assert stats.ANSWER_TYPES_OF["epoc"] == ("addressee_report", "epoc_enforcing_decision")


def test_a_request_to_two_states_is_one_leg_each() -> None:
    cluster = Cluster(4)
    node = cluster.nodes["CN"]
    b = Builder(node.app, cluster.members)
    custodian = {"name": "Example Hosting Ltd", "kind": "service_provider", "state": "FR"}
    request = b.act(
        "CN",
        "preservation_request",
        0,
        territorial_states=["FR", "VN"],
        custodian=custodian,
        expires_at=format_time(T0 + 24 * 80 * H),
    )
    b.answer(request, "FR", "preservation_response", 2, status="preserved")
    b.commit_all()
    result = statistics(view_of(node.app), T0 + 10 * H, group_by=("state",))
    assert result["groups"] == [
        {"state": "FR", **_figures(1, 1, 1, (2.0, 2.0, 2.0), (2.0, 2.0, 2.0), 0, None)},
        {"state": "VN", **_figures(1, 0, 0, None, None, 1, 10.0)},
    ]
    assert result["overall"]["requests"] == 2


def test_a_private_act_counts_only_where_its_content_is_read() -> None:
    cluster = Cluster(4)
    node = cluster.nodes["CN"]  # a party of the private request: it holds the body
    b = Builder(node.app, cluster.members)
    b.act("CN", "mla_request", 0, territorial_states=["TH"], case_ref="CASE-clear")
    hidden = b.private_act("CN", "mla_request", 1, territorial_states=["TH"], case_ref="CASE-p")
    b.commit_all()
    assert node.app.load_content(hidden.id).type == "mla_request"
    headers = statistics(view_of(node.app), T0 + 5 * H)
    assert headers["overall"]["requests"] == 1  # a header only: not counted
    party = ChainView(node.store, node.app.load_content, private=True)
    assert statistics(party, T0 + 5 * H)["overall"]["requests"] == 2


async def test_over_http_private_acts_count_for_a_body_reader_only(tmp_path: Path) -> None:
    cluster = Cluster(4, data_root=tmp_path)
    node = cluster.nodes["CN"]
    b = Builder(node.app, cluster.members)
    b.act("CN", "mla_request", 0, territorial_states=["TH"], case_ref="CASE-clear")
    hidden = b.private_act("CN", "mla_request", 1, territorial_states=["TH"], case_ref="CASE-p")
    b.commit_all()
    _, reader = create_token(node.config.data_dir, "investigator", "CN desk", state="CN")
    _, other = create_token(node.config.data_dir, "auditor", "audit", state="CN", cases=["X"])
    transport = httpx.ASGITransport(app=create_app(node))
    params = {"at": format_time(T0 + 5 * H)}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cn.api") as client:
            counts = []
            for secret in (None, other, reader):
                headers = {"authorization": f"Bearer {secret}"} if secret else {}
                reply = await client.get("/v1/stats", params=params, headers=headers)
                assert reply.status_code == 200, reply.text
                counts.append(reply.json()["overall"]["requests"])
        assert counts == [1, 1, 2]  # headers only, a token for another case, a body reader
        log = (node.config.data_dir / "access-log.jsonl").read_text()
        assert hidden.id in log  # the body read for the figures is logged
    finally:
        node.store.close()


# --- percentiles and CSV cells ------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        ([1.0], 90, 1.0),
        ([1.0, 2.0], 90, 2.0),  # ceil(1.8) = 2
        ([float(v) for v in range(1, 11)], 90, 9.0),  # ceil(9.0) = 9
        ([float(v) for v in range(1, 12)], 90, 10.0),  # ceil(9.9) = 10
        ([float(v) for v in range(1, 11)], 50, 5.0),
        ([float(v) for v in range(1, 11)], 100, 10.0),
    ],
)
def test_nearest_rank(values: list[float], percent: int, expected: float) -> None:
    assert nearest_rank(values, percent) == expected


def test_percentiles_of_nothing_are_a_bug() -> None:
    with pytest.raises(ValueError):
        nearest_rank([], 90)
    with pytest.raises(ValueError):
        stats.median([])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Budapest \t Convention\n", "budapest"),
        ("CETS 185", "budapest"),  # one instrument, however it is written
        ("Convention on Cybercrime, Art 29", "budapest"),
        ("  A Treaty \t Nobody Lists\n", "A Treaty Nobody Lists"),
        ("   ", None),
        (None, None),
        (42, None),
        ("Cafe\u0301 Treaty", "Caf\u00e9 Treaty"),  # NFC
    ],
)
def test_instrument_normalisation(text: object, expected: str | None) -> None:
    assert stats.normalise_instrument(text) == expected


def test_hostile_instrument_text_is_quoted_and_never_a_formula() -> None:
    row = {"instrument": '=HYPERLINK("http://x", "a, b")', **_figures(1, 0, 0, None, None, 1, 1.0)}
    result = {"group_by": ["instrument"], "overall": row, "groups": [row]}
    lines = statistics_csv(result).split("\r\n")
    assert lines[2] == 'group,*,"\'=HYPERLINK(""http://x"", ""a, b"")",*,1,0,0,,,,,,,1,1.0'


# --- over HTTP: the route, its CSV and its input checks --------------------------------------


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://cn.api") as made:
        yield made


async def test_the_route_serves_json_and_csv(client: httpx.AsyncClient) -> None:
    at = format_time(AT)
    reply = await client.get("/v1/stats", params={"at": at, "group_by": "state"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["overall"] == OVERALL
    assert [g["state"] for g in reply.json()["groups"]] == ["FR", "TH", "VN"]
    csv_reply = await client.get("/v1/stats", params={"at": at, "format": "csv"})
    assert csv_reply.status_code == 200
    assert csv_reply.headers["content-type"].startswith("text/csv")
    assert csv_reply.text == CSV


async def test_any_four_digit_year_is_a_window(client: httpx.AsyncClient) -> None:
    params = {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59.999999Z"}
    reply = await client.get("/v1/stats", params={**params, "at": format_time(AT)})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["from"], body["to"]) == ("0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z")
    assert body["overall"] == OVERALL


@pytest.mark.parametrize(
    ("params", "status", "code", "field"),
    [
        ({"group_by": "state,country"}, 400, "bad_query", "query.group_by"),
        ({"group_by": "state,state"}, 400, "bad_query", "query.group_by"),
        ({"group_by": ""}, 400, "bad_query", "query.group_by"),
        ({"group_by": "state,type,instrument,state"}, 400, "bad_query", "query.group_by"),
        (  # each time well formed, the window backwards: 422, as no schema can say it
            {"from": "2026-03-03T00:00:00Z", "to": "2026-03-02T00:00:00Z"},
            422,
            "bad_range",
            "query.from",
        ),
        ({"at": "2026-02-30T00:00:00Z"}, 400, "bad_time", "query.at"),
        ({"to": "yesterday"}, 400, "bad_time", "query.to"),
        ({"format": "xlsx"}, 400, "invalid_request", "query.format"),
    ],
)
async def test_bad_queries_are_refused_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], status: int, code: str, field: str
) -> None:
    reply = await client.get("/v1/stats", params=params)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["field"]) == (code, field)


# --- the documented example is this scenario's output -------------------------------------


def _fenced(after: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(re.escape(after) + r".*?```\w*\n(.*?)```", text, re.S)
    assert found is not None, after
    return found.group(1)


def test_the_docs_example_is_the_scenario(node: Node) -> None:
    example = json.loads(_fenced("<!-- example: json -->"))
    assert example == _stats(node, group_by=("state",))
    assert _fenced("<!-- example: csv -->") == CSV.replace("\r\n", "\n")
