"""``comity stats`` (api/cli/stats.py): fetches GET /v1/stats and prints it.

The node is a mock transport that serves a fixed answer and records the query, so
what is checked is the command: the parameters it sends, the table it prints (with
chain text made harmless for a terminal), the CSV and JSON it passes through, and
its exit status on an error.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from api.cli import stats as cli
from api.cli.client import NodeClient
from api.cli.main import main


def _figures(requests: int, backlog: int, oldest: float | None) -> dict[str, Any]:
    hours = {"median": 6.0, "p90": 12.0, "mean": 6.429}
    return {
        "requests": requests,
        "answered": 7,
        "final": 7,
        "first_answer_hours": hours,
        "final_answer_hours": hours,
        "backlog": backlog,
        "backlog_oldest_hours": oldest,
    }


ANSWER: dict[str, Any] = {
    "from": None,
    "to": None,
    "at": "2026-04-12T16:00:00.000Z",
    "group_by": ["state", "instrument"],
    "overall": _figures(20, 6, 963.0),
    "groups": [
        {"state": "FR", "instrument": "Budapest Convention", **_figures(10, 3, 963.0)},
        {"state": "TH", "instrument": "\x1b[31mred\x1b[0m", **_figures(10, 3, None)},
    ],
    "truncated": True,
}
CSV = "row,state\r\noverall,*\r\n"


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.params.get("group_by") == "nope":
            error = {"code": "bad_query", "message": "group_by ...", "field": "query.group_by"}
            return httpx.Response(400, json={"error": error})
        if request.url.params.get("format") == "csv":
            return httpx.Response(200, text=CSV, headers={"content-type": "text/csv"})
        return httpx.Response(200, json=ANSWER)

    def client(url: str, token: str | None) -> NodeClient:
        made = NodeClient(url, token)
        made.http = httpx.Client(
            transport=httpx.MockTransport(handler), base_url=url, headers=made.http.headers
        )
        return made

    monkeypatch.setattr(cli, "NodeClient", client)
    return requests


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["stats", "--node", "http://cn", *args])


def test_the_table_lists_groups_then_overall(seen: list[httpx.Request]) -> None:
    result = _run("--at", "2026-04-12T16:00:00Z", "--group-by", "state,instrument")
    assert result.exit_code == 0, result.output
    assert dict(seen[0].url.params) == {
        "at": "2026-04-12T16:00:00Z",
        "group_by": "state,instrument",
    }
    assert result.stdout.splitlines() == [
        "state  instrument           requests  answered  final  first median h  first p90 h  "
        "first mean h  final median h  final p90 h  final mean h  backlog  oldest h",
        "FR     Budapest Convention  10        7         7      6.0             12.0         "
        "6.429         6.0             12.0         6.429         3        963.0",
        "TH     ?[31mred?[0m         10        7         7      6.0             12.0         "
        "6.429         6.0             12.0         6.429         3        -",  # no escapes
        "(all)                       20        7         7      6.0             12.0         "
        "6.429         6.0             12.0         6.429         6        963.0",
        "requests committed in [-, -), as of 2026-04-12T16:00:00.000Z",
        "TRUNCATED: the node's scan bound was reached; the figures are partial",
    ]
    assert "\x1b" not in result.stdout


def test_csv_and_json_are_the_node_s_own(seen: list[httpx.Request]) -> None:
    as_csv = _run("--csv", "--from", "2026-03-01T00:00:00Z")
    assert as_csv.exit_code == 0 and as_csv.stdout_bytes == CSV.encode()  # CRLF kept
    assert seen[0].url.params["format"] == "csv" and seen[0].url.params["from"] == (
        "2026-03-01T00:00:00Z"
    )
    as_json = _run("--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == ANSWER
    assert _run("--json", "--csv").exit_code == 2


def test_a_refused_query_exits_2_with_the_node_s_code(seen: list[httpx.Request]) -> None:
    for extra in ([], ["--csv"]):
        result = _run("--group-by", "nope", *extra)
        assert result.exit_code == 2
        assert "HTTP 400 bad_query" in result.stderr


def test_a_token_is_sent_as_bearer(seen: list[httpx.Request]) -> None:
    assert _run("--token", "cmt_x").exit_code == 0
    assert seen[0].headers["authorization"] == "Bearer cmt_x"


def test_long_chain_text_is_cut_in_the_table_only() -> None:
    assert cli.printable("x" * 100) == "x" * 39 + "…"
    assert cli.printable("a\u202eb\nc") == "a?b?c"  # bidi override and newline
    assert cli.printable(None) == "-"
