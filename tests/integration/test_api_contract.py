"""Contract tests of every HTTP endpoint: status codes, body shapes and values.

One 4-node in-process cluster serves the whole module; records are committed
once by the ``chain`` fixture and every test reads the same chain.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ledger.block import verify_certificate
from ledger.merkle import leaf_hash
from tests.cluster import Cluster
from tests.independent_verifier import verify_consistency, verify_inclusion
from tests.merkle_reference import mth

pytestmark = pytest.mark.asyncio(loop_scope="module")
HEX64 = 64


@dataclass
class Chain:
    cluster: Cluster
    ids: list[str]  # in submission order
    api: httpx.AsyncClient  # FR's API


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chain(module_cluster: Cluster) -> Chain:
    """The module's cluster (conftest.py) after three rounds of records: several blocks."""
    ids = await module_cluster.commit_rounds(3, case_ref="CASE-{round}")
    return Chain(module_cluster, ids, module_cluster.api["FR"])


def _is_hex(text: Any, n: int = HEX64) -> bool:
    return isinstance(text, str) and len(text) == n and all(c in "0123456789abcdef" for c in text)


async def test_submit_is_202_then_idempotent_200_once_committed(chain: Chain) -> None:
    envelope = chain.cluster.envelope("FR")
    first = await chain.api.post("/v1/records", json=envelope)
    again = await chain.api.post("/v1/records", json=envelope)
    assert (first.status_code, first.json()["status"]) == (202, "pending")
    # The repeat answers what the record is by then: pending, or (rarely, its block
    # being that quick) committed; the same id either way.
    assert (again.status_code, again.json()["status"]) in {(202, "pending"), (200, "committed")}
    assert again.json()["id"] == first.json()["id"]
    record_id = first.json()["id"]
    assert (await chain.api.get(f"/v1/records/{record_id}", params={"wait": 15})).json()[
        "status"
    ] == "committed"
    replay = await chain.api.post("/v1/records", json=envelope)
    assert replay.status_code == 200
    assert replay.json() == {"id": record_id, "status": "committed"}
    committed = [
        rid
        for b in chain.cluster.nodes["FR"].store.iter_blocks(1, 1000)
        for rid in b.record_ids
        if rid == record_id
    ]
    assert committed == [record_id]
    chain.ids.append(record_id)


async def test_get_record_committed_shape(chain: Chain) -> None:
    record_id = chain.ids[0]
    body = (await chain.api.get(f"/v1/records/{record_id}")).json()
    assert set(body) == {"id", "status", "envelope", "height", "leaf_index", "channel_trail"}
    assert body["status"] == "committed" and body["id"] == record_id
    # No receipt anchors it (docs/CHANNELS.md "The trail").
    assert body["channel_trail"] == {"receipts": [], "truncated": False}
    located = chain.cluster.nodes["FR"].store.locate(record_id)
    assert (body["height"], body["leaf_index"]) == located
    assert set(body["envelope"]) == {"record", "signer", "signature"}


async def test_get_record_pending_then_long_poll_commits(chain: Chain) -> None:
    response = await chain.api.post("/v1/records", json=chain.cluster.envelope("TH"))
    record_id = response.json()["id"]
    pending = (await chain.api.get(f"/v1/records/{record_id}")).json()
    assert pending["status"] in ("pending", "committed")
    if pending["status"] == "pending":
        assert pending["height"] is None and pending["leaf_index"] is None
    waited = (await chain.api.get(f"/v1/records/{record_id}", params={"wait": 15})).json()
    assert waited["status"] == "committed" and isinstance(waited["height"], int)
    chain.ids.append(record_id)


async def test_long_poll_is_bounded_and_unknown_id_is_404(chain: Chain) -> None:
    unknown = "ab" * 32
    response = await chain.api.get(f"/v1/records/{unknown}", params={"wait": 0.2})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "record_not_found"
    too_long = await chain.api.get(f"/v1/records/{unknown}", params={"wait": 601})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "invalid_request"


async def test_inclusion_proof_matches_committing_header(chain: Chain) -> None:
    store = chain.cluster.nodes["FR"].store
    for record_id in chain.ids[:12]:
        proof = (await chain.api.get(f"/v1/records/{record_id}/proof")).json()
        assert set(proof) == {
            "id",
            "leaf_index",
            "tree_size",
            "audit_path",
            "root",
            "height",
            "checkpoint_height",
        }
        header = (await chain.api.get(f"/v1/blocks/{proof['height']}")).json()["header"]
        assert (proof["root"], proof["tree_size"]) == (header["ledger_root"], header["ledger_size"])
        assert proof["checkpoint_height"] == proof["height"]
        leaf = store.get_envelope_bytes(record_id)
        assert leaf is not None
        assert verify_inclusion(
            leaf_hash(leaf),
            proof["leaf_index"],
            proof["tree_size"],
            [bytes.fromhex(h) for h in proof["audit_path"]],
            bytes.fromhex(proof["root"]),
        )


async def test_inclusion_proof_at_later_tree_size(chain: Chain) -> None:
    store = chain.cluster.nodes["FR"].store
    record_id = chain.ids[0]
    size = store.ledger_size
    proof = (
        await chain.api.get(f"/v1/records/{record_id}/proof", params={"tree_size": size})
    ).json()
    assert proof["tree_size"] == size and proof["root"] == store.ledger_root(size).hex()
    assert proof["checkpoint_height"] == store.height
    leaves = [store.get_envelope_bytes(store.record_id_at(i) or "") or b"" for i in range(size)]
    assert proof["root"] == mth(leaves).hex()
    for bad in (size + 1, proof["leaf_index"]):  # beyond the log; does not hold the leaf
        response = await chain.api.get(f"/v1/records/{record_id}/proof", params={"tree_size": bad})
        assert response.status_code == 404  # no such proof: schema-valid input is not a 400
        assert response.json()["error"]["code"] == "bad_tree_size"


async def test_proof_of_pending_or_unknown_record_is_404(chain: Chain) -> None:
    response = await chain.api.get(f"/v1/records/{'cd' * 32}/proof")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "record_not_found",
        "field": "id",
        "message": f"no committed record with id {'cd' * 32}",
    }


async def test_consistency_proof_verifies_between_checkpoints(chain: Chain) -> None:
    store = chain.cluster.nodes["FR"].store
    first_size = store.get_header(1).ledger_size  # type: ignore[union-attr]
    second_size = store.ledger_size
    body = (
        await chain.api.get(
            "/v1/proofs/consistency", params={"first": first_size, "second": second_size}
        )
    ).json()
    assert set(body) == {"first", "second", "first_root", "second_root", "proof"}
    assert body["first_root"] == store.get_header(1).ledger_root  # type: ignore[union-attr]
    assert body["second_root"] == store.ledger_root().hex()
    assert verify_consistency(
        first_size,
        second_size,
        bytes.fromhex(body["first_root"]),
        bytes.fromhex(body["second_root"]),
        [bytes.fromhex(h) for h in body["proof"]],
    )
    for params, status, code in (
        ({"first": 2, "second": 1}, 404, "bad_range"),  # that proof does not exist
        ({"first": 0, "second": 1}, 400, "invalid_request"),
        ({"first": 1, "second": 10**6}, 404, "size_beyond_ledger"),
    ):
        response = await chain.api.get("/v1/proofs/consistency", params=params)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_blocks_by_height_latest_and_pages(chain: Chain) -> None:
    node = chain.cluster.nodes["FR"]
    height = node.app.height
    latest = (await chain.api.get("/v1/blocks/latest")).json()
    assert set(latest) == {"hash", "header", "record_ids", "commit"}
    assert latest["header"]["height"] == height and _is_hex(latest["hash"])
    one = (await chain.api.get("/v1/blocks/1")).json()
    assert one["hash"] == node.store.get_header(1).hash()  # type: ignore[union-attr]
    assert one["record_ids"] == node.store.get_block_record_ids(1)
    assert one["commit"]["block_hash"] == one["hash"]
    page = (await chain.api.get("/v1/blocks", params={"from": 1, "limit": 2})).json()
    assert [b["header"]["height"] for b in page["blocks"]] == list(range(1, min(2, height) + 1))
    assert page["next_from"] == (3 if height > 2 else None)
    missing = await chain.api.get(f"/v1/blocks/{height + 100}")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "block_not_found")
    bad = await chain.api.get("/v1/blocks/abc")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_request")


async def test_validators_and_certificates_check(chain: Chain) -> None:
    node = chain.cluster.nodes["FR"]
    body = (await chain.api.get("/v1/validators", params={"height": 1})).json()
    assert body["height"] == 1
    assert [v["state"] for v in body["validators"]] == ["CN", "FR", "TH", "VN"]
    default = (await chain.api.get("/v1/validators")).json()
    assert default["height"] == node.app.height + 1
    block = (await chain.api.get("/v1/blocks/1")).json()
    from ledger.block import CommitCertificate, Validator

    verify_certificate(
        CommitCertificate.from_json(block["commit"]),
        chain.cluster.chain_id,
        [Validator(**v) for v in body["validators"]],
        block["hash"],
        1,
    )
    future = await chain.api.get("/v1/validators", params={"height": node.app.height + 5})
    assert (future.status_code, future.json()["error"]["code"]) == (404, "height_not_found")


async def test_search_by_each_key_in_commit_order(chain: Chain) -> None:
    store = chain.cluster.nodes["FR"].store
    fr = (await chain.api.get("/v1/search", params={"actor_state": "FR"})).json()
    leaves = [r["leaf_index"] for r in fr["results"]]
    assert leaves == sorted(leaves) and len(leaves) >= 3 and fr["next_cursor"] is None
    assert all(r["actor_state"] == "FR" for r in fr["results"])
    assert set(fr["results"][0]) == {"id", "height", "leaf_index", "type", "actor_state"}
    case = (await chain.api.get("/v1/search", params={"case_ref": "CASE-1"})).json()
    assert len(case["results"]) == 4
    record = chain.cluster.nodes["FR"].app.load_envelope(chain.ids[0])
    for key, value in (
        ("evidence_sha256", record.record["evidence"][0]["sha256"]),
        ("signer", record.signer),
        ("type", record.type),
        ("territorial_state", "TH"),
    ):
        found = (await chain.api.get("/v1/search", params={key: value})).json()["results"]
        assert chain.ids[0] in [r["id"] for r in found], key
    assert store.ledger_size >= 12


async def test_search_pages_with_cursor_and_limit(chain: Chain) -> None:
    all_ = (
        await chain.api.get("/v1/search", params={"type": "preservation_request", "limit": 1000})
    ).json()["results"]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"type": "preservation_request", "limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = (await chain.api.get("/v1/search", params=params)).json()
        seen += [r["id"] for r in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in all_]


async def test_search_time_range_maps_to_blocks(chain: Chain) -> None:
    store = chain.cluster.nodes["FR"].store
    h2 = store.get_header(2)
    assert h2 is not None
    from_2 = (
        await chain.api.get(
            "/v1/search", params={"type": "preservation_request", "from_time": h2.time}
        )
    ).json()
    assert from_2["results"] and all(r["height"] >= 2 for r in from_2["results"])
    only_2 = (
        await chain.api.get(
            "/v1/search",
            params={"type": "preservation_request", "from_time": h2.time, "to_time": h2.time},
        )
    ).json()
    assert {r["height"] for r in only_2["results"]} == {2}
    assert len(only_2["results"]) == h2.record_count


async def test_search_rejects_bad_queries(chain: Chain) -> None:
    bad: list[tuple[dict[str, str | int], str]] = [
        ({}, "bad_query"),
        ({"type": "x", "case_ref": "y"}, "bad_query"),
        ({"type": "x", "cursor": "abc"}, "bad_cursor"),
        ({"type": "x", "from_time": "yesterday"}, "bad_time"),
        ({"type": "x", "limit": 1001}, "invalid_request"),
    ]
    for params, code in bad:
        response = await chain.api.get("/v1/search", params=params)
        assert (response.status_code, response.json()["error"]["code"]) == (400, code), params


async def test_status_health_ready_and_unknown_route(chain: Chain) -> None:
    status = (await chain.api.get("/v1/status")).json()
    assert status["state"] == "FR" and status["height"] >= 1
    assert (await chain.api.get("/healthz")).json() == {"status": "ok"}
    ready = await chain.api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True and ready.json()["peers_needed"] == 2
    unknown = await chain.api.get("/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "Not Found"}}
    wrong_method = await chain.api.delete("/v1/status")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "GET"  # RFC 9110 §15.5.6


async def test_readyz_is_503_when_peers_are_down(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = chain.cluster.nodes["FR"]
    saved = {s: p.stats.up for s, p in node.peers.peers.items()}

    async def unreachable(*args: object, **kwargs: object) -> dict[str, object]:
        raise httpx.ConnectError("test: every peer is unreachable")

    # Without this a peer request in flight could mark a peer up again.
    monkeypatch.setattr(node.peers, "request", unreachable)
    try:
        for peer in node.peers.peers.values():
            peer.stats.up = False
        response = await chain.api.get("/readyz")
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["ready"] is False and response.json()["peers_up"] == 0
    finally:
        for state, up in saved.items():
            node.peers.peers[state].stats.up = up


async def test_openapi_lists_every_endpoint_with_examples(chain: Chain) -> None:
    spec = (await chain.api.get("/openapi.json")).json()
    for path in (
        "/v1/records",
        "/v1/records/batch",
        "/v1/records/{record_id}",
        "/v1/records/{record_id}/proof",
        "/v1/proofs/consistency",
        "/v1/blocks",
        "/v1/blocks/latest",
        "/v1/blocks/{height}",
        "/v1/validators",
        "/v1/search",
        "/v1/events",
        "/v1/status",
        "/v1/peers",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"], path
    assert spec["components"]["schemas"]["InclusionProof"]["examples"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert (await chain.api.get("/docs")).status_code == 200


async def test_all_nodes_serve_the_same_reads(chain: Chain) -> None:
    await asyncio.sleep(0)
    height = min(n.app.height for n in chain.cluster.nodes.values())
    bodies = [
        (await chain.cluster.api[s].get(f"/v1/blocks/{height}")).json()["hash"]
        for s in chain.cluster.states
    ]
    assert len(set(bodies)) == 1
