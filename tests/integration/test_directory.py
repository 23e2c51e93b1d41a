"""The directory on an in-process cluster (issue 19): the API, the CLI, the treaty rules.

``comity directory import|export`` run for real (click) in a worker thread; their
HTTP client reaches the cluster's in-process API through a bridge transport that
runs each request on the cluster's event loop, so the node they talk to is a real
one, not a mock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from click.testing import CliRunner, Result

from api.cli import directory as cli
from api.cli.client import NodeClient
from api.cli.main import main
from ledger.keys import save_signing_key
from tests.cluster import Cluster

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[2] / "docs/examples/directory.json"


class Bridge(httpx.BaseTransport):
    """A sync transport that runs each request on ``loop`` with an async client."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            reply = await self.client.request(
                request.method,
                request.url.path,
                params=request.url.params,
                content=request.content,
                headers={"content-type": "application/json"},
            )
            return httpx.Response(reply.status_code, content=reply.content, headers=reply.headers)

        return asyncio.run_coroutine_threadsafe(send(), self.loop).result(60)


@pytest_asyncio.fixture
async def bridged(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    loop = asyncio.get_running_loop()

    def client(url: str, token: str | None) -> NodeClient:
        made = NodeClient(url, token)
        state = httpx.URL(url).host.split(".")[0].upper()
        made.http = httpx.Client(transport=Bridge(cluster.api[state], loop), base_url=url)
        return made

    monkeypatch.setattr(cli, "NodeClient", client)
    return cluster


async def _cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, ["directory", *args])


async def _import(cluster: Cluster, tmp_path: Path, state: str, path: Path = EXAMPLE) -> Result:
    key = tmp_path / f"{state}-admin.key"
    if not key.exists():
        save_signing_key(key, cluster.member(state).admin)
    return await _cli(
        "import",
        str(path),
        "--node",
        f"http://{state.lower()}.api",
        "--admin-key",
        str(key),
        "--state",
        state,
        "--wait",
        "20",
    )


async def test_import_export_round_trip_is_idempotent(bridged: Cluster, tmp_path: Path) -> None:
    cluster = bridged
    for state in cluster.states:
        result = await _import(cluster, tmp_path, state)
        assert result.exit_code == 0, result.output
        assert "committed at height" in result.output
    again = await _import(cluster, tmp_path, "TH")
    assert again.exit_code == 0 and again.output.startswith("unchanged: TH"), again.output
    api = cluster.api["CN"]
    await cluster.wait_height(cluster.nodes["FR"].app.height)
    listing = (await api.get("/v1/directory")).json()
    assert [row["entry"]["state"] for row in listing["entries"]] == ["CN", "FR", "TH", "VN"]
    assert len({row["record_id"] for row in listing["entries"]}) == 4  # one record each
    out = tmp_path / "export.json"
    exported = await _cli("export", "--node", "http://cn.api", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    written = json.loads(out.read_text())
    original = json.loads(EXAMPLE.read_text())
    assert written["entries"] == original["entries"] and written["height"] >= 1
    # The export imports as it is: nothing new is signed.
    back = await _import(cluster, tmp_path, "FR", out)
    assert back.output.startswith("unchanged: FR"), back.output


async def test_state_view_history_and_errors(bridged: Cluster, tmp_path: Path) -> None:
    cluster = bridged
    assert (await _import(cluster, tmp_path, "FR")).exit_code == 0
    changed = json.loads(EXAMPLE.read_text())
    fr = next(e for e in changed["entries"] if e["state"] == "FR")
    fr["languages"] = ["fr", "en"]
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    assert (await _import(cluster, tmp_path, "FR", path)).exit_code == 0
    api = cluster.api["FR"]
    view = (await api.get("/v1/directory/FR")).json()
    assert view["current"]["entry"]["languages"] == ["fr", "en"]
    assert [h["entry"]["languages"] for h in view["history"]] == [["fr"]]
    assert view["history_total"] == 1
    assert view["history"][0]["height"] < view["current"]["height"]
    missing = await api.get("/v1/directory/VN")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "no_directory_entry")
    bad = await api.get("/v1/directory/fr")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "bad_state")
    # A bad entry is named before anything is signed.
    fr["authorities"][0]["channels"][0]["kind"] = "pigeon"
    path.write_text(json.dumps(changed))
    refused = await _import(cluster, tmp_path, "FR", path)
    assert refused.exit_code == 2
    assert "record.authorities[0].channels[0].kind" in refused.output


async def test_the_imported_directory_drives_the_rules(bridged: Cluster, tmp_path: Path) -> None:
    """Issue 19's done-when: a devnet imports a directory with declarations for all four
    members, and an act with no instrument in force between its states is refused."""
    cluster = bridged
    for state in cluster.states:
        assert (await _import(cluster, tmp_path, state)).exit_code == 0
    await cluster.wait_height(cluster.nodes["VN"].app.height)
    api = cluster.api["CN"]
    refused = await api.post(
        "/v1/records",
        json=cluster.envelope(
            "CN",
            territorial_states=["VN"],
            legal_basis={"instrument": "Budapest Convention", "article": "Art 29"},
        ),
    )
    error = refused.json()["error"]
    assert refused.status_code == 422, refused.text
    assert (error["code"], error["field"]) == ("no_legal_basis", "record.legal_basis.instrument")
    accepted = await api.post(
        "/v1/records",
        json=cluster.envelope(
            "CN",
            territorial_states=["VN"],
            legal_basis={"instrument": "UNTOC", "article": "Art 18"},
            languages=["zh"],
        ),
    )
    assert accepted.status_code == 202, accepted.text
    warnings = accepted.json()["warnings"]
    assert [(w["code"], w["field"]) for w in warnings] == [
        ("translation_missing", "record.languages")
    ]
    record_id = accepted.json()["id"]
    view = (await api.get(f"/v1/records/{record_id}", params={"wait": 20})).json()
    assert view["status"] == "committed"
    vn = cluster.api["VN"]
    await cluster.wait_height(view["height"])
    due = (await vn.get("/v1/deadlines", params={"clock": "translation_missing"})).json()
    assert [i["id"] for i in due["items"]] == [record_id]
    notices = (await vn.get("/v1/sovereignty/notices")).json()["notices"]
    notice = next(n for n in notices if n["id"] == record_id)
    assert notice["route_to"]["authority"] == "vn-247"  # a preservation: the 24/7 contact
