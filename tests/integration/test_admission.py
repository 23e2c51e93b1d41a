"""Fair admission on in-process nodes: quotas, cheap checks first, conflicts, rate limits.

Each test reproduces a finding of the security review (FINDINGS.md M3, M4, C1,
H1) through the node's own API app (``httpx.ASGITransport``) or its gossip
entry point (``Admission.accept_gossip``, what ``/p2p/v1/batch`` does per record).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from ledger import merkle
from ledger.canonical import canonical_bytes, parse_json
from ledger.keys import SigningKey
from ledger.records import Envelope, parse_envelope, verify_signature
from node import admission as admission_module
from node import mempool as mempool_module
from node import runtime as runtime_module
from node.config import Limits
from node.runtime import Node
from tests.cluster import Cluster, Switch

pytestmark = pytest.mark.asyncio


def _parse(envelope: dict[str, Any]) -> Envelope:
    return parse_envelope(envelope, max_record_bytes=64 * 1024)


def _client(node: Node, host: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(node), client=(host, 40_000)),
        base_url="http://node.api",
    )


def _resign(envelope: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """The same record (so the same id) signed by another key: another leaf."""
    record = envelope["record"]
    return {
        "record": record,
        "signer": key.public_hex,
        "signature": key.sign(canonical_bytes(record)).hex(),
    }


@pytest_asyncio.fixture
async def alone() -> AsyncIterator[Cluster]:
    """A 4-member consortium in which only CN runs: nothing it admits commits."""
    cluster = Cluster(4)
    for state in cluster.states:
        cluster.transports.setdefault(state, Switch())
    await cluster.start(["CN"])
    try:
        yield cluster
    finally:
        await cluster.stop(["CN"])


# --- M3: one state's gossip may not take every other state's room ---------------------------


async def test_m3_a_flood_of_one_states_gossip_leaves_room_for_the_others(alone: Cluster) -> None:
    cn = alone.nodes["CN"]
    for _ in range(2500):  # valid records signed by VN's enrolled investigator
        cn.admission.accept_gossip(
            _parse(alone.envelope("VN"))
        )  # over its share: dropped, no raise
    flooded = len(cn.mempool)
    api = alone.api["CN"]
    reply = await api.post("/v1/records", json=alone.envelope("CN"))
    assert reply.status_code == 202, reply.text
    authority = alone.member("CN").authority.public_hex
    revoke = alone.envelope(
        "CN", type_="revoke_key", signer=alone.member("CN").admin, pubkey=authority
    )
    reply = await api.post("/v1/records", json=revoke)
    assert reply.status_code == 202, reply.text
    assert len(cn.mempool) == flooded + 2
    assert flooded == cn.mempool.signer_max_records  # VN's signer share; the rest dropped
    assert cn.mempool.gossip_dropped["signer_quota"] == 2500 - flooded


async def test_m3_one_signer_over_its_share_gets_503_signer_quota(alone: Cluster) -> None:
    cn = alone.nodes["CN"]
    share = cn.mempool.signer_max_records
    for start in range(0, share, 500):
        body = {"envelopes": [alone.envelope("CN") for _ in range(min(500, share - start))]}
        reply = await alone.api["CN"].post("/v1/records/batch", json=body)
        assert reply.status_code == 200 and all("id" in r for r in reply.json()["results"])
    assert len(cn.mempool) == share
    reply = await alone.api["CN"].post("/v1/records", json=alone.envelope("CN"))
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["code"] == "signer_quota"
    assert int(reply.headers["retry-after"]) >= 1
    other = alone.envelope("CN", signer=alone.member("CN").authority)  # the state has room
    assert (await alone.api["CN"].post("/v1/records", json=other)).status_code == 202


# --- M4: the enrolment lookup comes before Ed25519 and the schema ---------------------------


async def test_m4_a_never_enrolled_signer_costs_no_signature_check_nor_schema(
    alone: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cn = alone.nodes["CN"]
    calls = {"verify": 0, "schema": 0}
    real_verify_all, real_verify, real_check = (
        runtime_module._verify_all,
        verify_signature,  # what node.mempool calls, replaced there below
        cn.app.registry.check,
    )

    def verify_all(envelopes: Any) -> list[bool]:
        calls["verify"] += len(envelopes)
        return real_verify_all(envelopes)

    def verify(envelope: Envelope) -> None:
        calls["verify"] += 1
        real_verify(envelope)

    def check(record: Any, version: int | None = None) -> None:
        calls["schema"] += 1
        real_check(record, version)

    monkeypatch.setattr(runtime_module, "_verify_all", verify_all)
    monkeypatch.setattr(mempool_module, "verify_signature", verify)
    monkeypatch.setattr(cn.app.registry, "check", check)
    stranger = SigningKey.generate()
    api = alone.api["CN"]
    reply = await api.post("/v1/records", json=alone.envelope("CN", signer=stranger))
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "signer_not_enrolled"
    body = {"envelopes": [alone.envelope("CN", signer=stranger) for _ in range(10)]}
    reply = await api.post("/v1/records/batch", json=body)
    assert reply.status_code == 200
    assert [r["error"]["code"] for r in reply.json()["results"]] == ["signer_not_enrolled"] * 10
    # An investigator signing a governance record: refused for its role, just as cheaply.
    reply = await api.post(
        "/v1/records", json=alone.envelope("CN", type_="revoke_key", pubkey=stranger.public_hex)
    )
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "role_not_allowed"
    assert calls == {"verify": 0, "schema": 0}
    assert len(cn.mempool) == 0
    reply = await api.post("/v1/records", json=alone.envelope("CN"))  # control
    assert reply.status_code == 202 and calls == {"verify": 1, "schema": 1}


# --- C1 (mempool half): one id, two leaves --------------------------------------------------


async def test_c1_a_second_envelope_of_a_pending_record_is_409_and_the_first_stays(
    alone: Cluster,
) -> None:
    cn, api = alone.nodes["CN"], alone.api["CN"]
    first = alone.envelope("CN")
    assert (await api.post("/v1/records", json=first)).status_code == 202
    assert (await api.post("/v1/records", json=first)).status_code == 202  # idempotent
    second = _resign(first, alone.member("CN").authority)  # same record: same id
    reply = await api.post("/v1/records", json=second)
    assert reply.status_code == 409, reply.text
    assert reply.json()["error"]["code"] == "conflicting_envelope"
    assert reply.json()["error"]["field"] == "signature"
    reply = await api.post("/v1/records/batch", json={"envelopes": [second]})
    assert reply.json()["results"][0]["error"]["code"] == "conflicting_envelope"
    kept = _parse(first)
    cn.admission.accept_gossip(_parse(second))  # by gossip: ignored, counted, the first kept
    assert cn.mempool.gossip_dropped["conflicting_envelope"] == 1
    pending = cn.mempool.get(kept.id)
    assert pending is not None and pending.leaf == kept.leaf
    assert cn.mempool.get_leaf(kept.id, merkle.leaf_hash(kept.leaf)) is not None
    assert cn.mempool.get_leaf(kept.id, merkle.leaf_hash(_parse(second).leaf)) is None
    assert len(cn.mempool) == 1


# --- H1 (API half): a small body limit, batches parsed off the loop -------------------------


async def test_h1_single_record_body_limit_follows_the_genesis_record_limit() -> None:
    cluster = Cluster(4, consensus={"max_record_bytes": 4096})
    node = cluster.nodes["CN"]
    async with _client(node) as api:
        padded = b'{"record": {}, "signer": "", "signature": ""' + b" " * 12_000 + b"}"
        reply = await api.post(
            "/v1/records", content=padded, headers={"content-type": "application/json"}
        )
        assert reply.status_code == 413 and reply.json()["error"]["code"] == "body_too_large"
        evidence = [{"sha256": f"{i:064x}"} for i in range(30)]  # a record of ~3 KiB: fine
        envelope = cluster.envelope("CN", evidence=evidence)
        reply = await api.post("/v1/records", json=envelope)
        assert reply.status_code == 202, reply.text
    node.store.close()


async def test_h1_a_batch_is_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Cluster(4)
    node = cluster.nodes["CN"]
    threads: list[threading.Thread] = []
    real_parse = parse_json  # what admission calls, replaced there below

    def parse(data: bytes) -> Any:
        threads.append(threading.current_thread())
        return real_parse(data)

    monkeypatch.setattr(admission_module, "parse_json", parse)
    async with _client(node) as api:
        body = {"envelopes": [cluster.envelope("CN") for _ in range(3)]}
        reply = await api.post("/v1/records/batch", json=body)
        assert reply.status_code == 200 and len(reply.json()["results"]) == 3
    assert threads and all(t is not threading.main_thread() for t in threads)
    node.store.close()


# --- M4: per-source rate limits on the write routes -----------------------------------------


async def test_m4_write_routes_are_rate_limited_per_client_ip() -> None:
    cluster = Cluster(4)
    node = cluster.nodes["CN"]
    node.config = node.config.model_copy(
        update={"limits": Limits(ip_write_requests_per_s=1, ip_write_burst_requests=3)}
    )
    async with _client(node, "203.0.113.7") as api:
        statuses = [
            (await api.post("/v1/records", json=cluster.envelope("CN"))).status_code
            for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429]
        reply = await api.post("/v1/records/batch", json={"envelopes": []})
        assert reply.status_code == 429
        assert reply.json()["error"]["code"] == "rate_limited"
        assert int(reply.headers["retry-after"]) >= 1
    async with _client(node, "203.0.113.8") as api:  # another source has its own bucket
        assert (await api.post("/v1/records", json=cluster.envelope("CN"))).status_code == 202
    async with _client(node) as api:  # loopback is exempt by default (the benchmark, tests)
        for _ in range(5):
            assert (await api.post("/v1/records", json=cluster.envelope("CN"))).status_code == 202
    node.store.close()


async def test_m4_write_routes_are_rate_limited_per_signer() -> None:
    cluster = Cluster(4)
    node = cluster.nodes["CN"]
    node.config = node.config.model_copy(
        update={"limits": Limits(signer_records_per_s=1, signer_burst_records=5)}
    )
    async with _client(node, "203.0.113.9") as api:
        body = {"envelopes": [cluster.envelope("CN") for _ in range(5)]}
        assert (await api.post("/v1/records/batch", json=body)).status_code == 200
        body = {"envelopes": [cluster.envelope("CN") for _ in range(2)]}
        reply = await api.post("/v1/records/batch", json=body)
        assert reply.status_code == 429 and reply.json()["error"]["code"] == "rate_limited"
        assert reply.json()["error"]["field"] == "signer"
        assert len(node.mempool) == 5  # all or nothing, like the mempool's room
        reply = await api.post("/v1/records", json=cluster.envelope("CN"))
        assert reply.status_code == 429 and int(reply.headers["retry-after"]) >= 1
        other = cluster.envelope("CN", signer=cluster.member("CN").authority)
        assert (await api.post("/v1/records", json=other)).status_code == 202
    node.store.close()


async def test_m3_gossip_over_a_share_is_dropped_before_its_signature_is_checked(
    alone: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cn = alone.nodes["CN"]
    verified: list[int] = []
    real_verify_all = runtime_module._verify_all

    def verify_all(envelopes: Any) -> list[bool]:
        verified.append(len(envelopes))
        return real_verify_all(envelopes)

    monkeypatch.setattr(runtime_module, "_verify_all", verify_all)
    share = cn.mempool.signer_max_records
    raw = [alone.envelope("VN") for _ in range(share + 100)]  # what /p2p/v1/batch hands on
    await cn.inbound.take_records(alone.member("VN").node.public_hex, raw)
    assert len(cn.mempool) == share and sum(verified) == share
    assert cn.mempool.gossip_dropped["signer_quota"] == 100
