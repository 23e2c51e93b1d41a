"""``GET /metrics`` on an in-process 4-node cluster: per-node registries, the state read
at scrape time, the histograms fed by commits, API request counting and 5xx logging."""

from __future__ import annotations

import logging

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(module_cluster: Cluster) -> Cluster:
    """The module's cluster (conftest.py) with one committed record from each state."""
    await module_cluster.commit_rounds(1)
    return module_cluster


async def _scrape(
    cluster: Cluster, state: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = await cluster.api[state].get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


async def test_metrics_read_node_state_per_node(cluster: Cluster) -> None:
    for state in cluster.states:
        node = cluster.nodes[state]
        samples = await _scrape(cluster, state)
        assert samples[("comity_height", ())] == node.app.height >= 1
        assert samples[("comity_records_committed_total", ())] == node.store.ledger_size
        assert samples[("comity_mempool_records", ())] == len(node.mempool)
        peers = [s for s in cluster.states if s != state]
        for peer in peers:  # one series per peer link, none for ourselves
            assert (("comity_peer_up", (("peer", peer),))) in samples
            lag = samples[("comity_peer_lag_blocks", (("peer", peer),))]
            assert lag == node.peers.peers[peer].stats.height - node.app.height
            assert samples[("comity_gossip_sent_bytes_total", (("peer", peer),))] > 0
        assert ("comity_peer_up", (("peer", state),)) not in samples


async def test_commit_histograms_count_decided_heights(cluster: Cluster) -> None:
    samples = await _scrape(cluster, "FR")
    node = cluster.nodes["FR"]
    decided = samples[("comity_rounds_per_height_count", ())]
    assert 1 <= decided <= node.app.height
    assert samples[("comity_commit_latency_seconds_count", ())] == decided
    assert samples[("comity_rounds_per_height_sum", ())] >= decided  # at least one round each


async def test_api_requests_and_client_errors_are_counted(cluster: Cluster) -> None:
    api = cluster.api["TH"]
    assert (await api.get("/v1/records/" + "0" * 64)).status_code == 404
    bad = cluster.envelope("TH")
    bad["signature"] = "00" * 64
    assert (await api.post("/v1/records", json=bad)).status_code in (400, 401, 403, 422)
    samples = await _scrape(cluster, "TH")
    route = (("method", "GET"), ("route", "/v1/records/{record_id}"), ("status", "404"))
    assert samples[("comity_api_requests_total", route)] >= 1
    codes = {labels for (name, labels) in samples if name == "comity_api_client_errors_total"}
    assert (("code", "record_not_found"),) in codes
    assert len(codes) >= 2  # and the bad signature's code
    # Raw paths never become labels: the record id is not in any series.
    assert all("0" * 64 not in str(labels) for (_, labels) in samples)


async def test_a_5xx_is_logged_with_its_request_id(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    app = cluster.api["VN"]._transport.app  # type: ignore[attr-defined]

    async def boom() -> None:
        raise RuntimeError("deliberate fault for the test")

    app.add_api_route("/test-boom", boom)
    # The app answers 500 and re-raises for the server to log; keep only the answer.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.WARNING):
        async with httpx.AsyncClient(transport=transport, base_url="http://vn.api") as client:
            reply = await client.get("/test-boom", headers={"x-request-id": "req-42"})
    assert reply.status_code == 500
    request_id = reply.headers["x-request-id"]
    assert request_id in reply.json()["error"]["message"]
    assert any(request_id in r.getMessage() for r in caplog.records)  # the handler's id
    assert any(
        getattr(r, "request_id", None) == "req-42" and r.levelno == logging.WARNING
        for r in caplog.records
    )  # the middleware's line, with the caller's id
    samples = await _scrape(cluster, "VN")
    labels = (("method", "GET"), ("route", "/test-boom"), ("status", "500"))
    assert samples[("comity_api_requests_total", labels)] == 1


async def test_registries_are_separate_per_node(cluster: Cluster) -> None:
    before = await _scrape(cluster, "CN")
    for _ in range(3):
        await cluster.api["FR"].get("/healthz")
    after = await _scrape(cluster, "CN")
    key = (
        "comity_api_requests_total",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    assert before.get(key, 0) == after.get(key, 0)
