"""A catalogue of hostile and malformed submissions.

Each row asserts the exact HTTP status and stable error code, and that
nothing was stored: every node's mempool size, ledger size and height are
unchanged afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import pytest_asyncio

from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from tests.cluster import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="module")
Snapshot = tuple[tuple[int, int, int], ...]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(module_cluster: Cluster) -> Cluster:
    """One cluster for the module (conftest.py): every refusal leaves it as it was."""
    return module_cluster


async def quiet(cluster: Cluster) -> Snapshot:
    """Wait until nothing is pending anywhere and all nodes agree; then snapshot."""
    for _ in range(500):
        nodes = list(cluster.nodes.values())
        if not any(len(n.mempool) for n in nodes) and len({n.store.height for n in nodes}) == 1:
            break
        await asyncio.sleep(0.02)
    return snapshot(cluster)


def snapshot(cluster: Cluster) -> Snapshot:
    return tuple(
        (len(n.mempool), n.store.ledger_size, n.store.height) for n in cluster.nodes.values()
    )


def canonical_sha256(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def resign(envelope: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    return dict(
        envelope,
        signer=key.public_hex,
        signature=key.sign(canonical_bytes(envelope["record"])).hex(),
    )


def with_record(
    cluster: Cluster, state: str = "FR", key: SigningKey | None = None, **changes: Any
) -> bytes:
    """A correctly signed envelope whose record has ``changes`` applied."""
    envelope = cluster.envelope(state)
    envelope["record"].update(changes)
    return dumps(resign(envelope, key or cluster.member(state).investigator))


def nested(depth: int) -> bytes:
    return b'{"record":' + b"[" * depth + b"]" * depth + b',"signer":"","signature":""}'


def tampered_signature(cluster: Cluster) -> bytes:
    envelope = cluster.envelope("FR")
    signature = bytearray(bytes.fromhex(envelope["signature"]))
    signature[5] ^= 1
    return dumps(dict(envelope, signature=signature.hex()))


def enroll_by_investigator(cluster: Cluster) -> bytes:
    return with_record(
        cluster,
        type="enroll_key",
        pubkey=SigningKey.generate().public_hex,
        roles=["investigator"],
        agency="Rogue unit",
    )


Builder = Callable[[Cluster], bytes]
CASES: list[tuple[str, Builder, int, str]] = [
    ("malformed_json", lambda c: b'{"record": {', 400, "malformed_json"),
    ("not_json_at_all", lambda c: b"hello", 400, "malformed_json"),
    ("nan", lambda c: dumps(c.envelope("FR"))[:-1] + b', "x": NaN}', 400, "malformed_json"),
    ("float", lambda c: dumps(c.envelope("FR"))[:-1] + b', "x": 1.5}', 400, "float_not_allowed"),
    (
        "float_in_record",
        lambda c: dumps(c.envelope("FR")).replace(b'"schema"', b'"amount": 1.5e-3, "schema"'),
        400,
        "float_not_allowed",
    ),
    (
        "integer_out_of_range",
        lambda c: dumps(c.envelope("FR")).replace(b'"schema"', b'"n": 9007199254740993, "schema"'),
        400,
        "integer_out_of_range",
    ),
    (
        "duplicate_key",
        lambda c: dumps(c.envelope("FR")).replace(
            b'"schema"', b'"case_ref": "A", "case_ref": "B", "schema"'
        ),
        400,
        "duplicate_key",
    ),
    (
        "invalid_utf8",
        lambda c: dumps(c.envelope("FR")).replace(b'"CASE-2026-0001"', b'"CASE-\xc0\xaf"'),
        400,
        "invalid_utf8",
    ),
    ("deep_nesting", lambda c: nested(40), 400, "too_deep"),
    (
        "body_over_8_mib",
        lambda c: b'{"record":"' + b"a" * (8 * 1024 * 1024) + b'"}',
        413,
        "body_too_large",
    ),
    ("record_over_64_kib", lambda c: with_record(c, notes="x" * 70_000), 413, "record_too_large"),
    ("envelope_not_object", lambda c: b"[]", 400, "bad_type"),
    ("record_not_object", lambda c: dumps(dict(c.envelope("FR"), record="text")), 400, "bad_type"),
    (
        "unknown_envelope_field",
        lambda c: dumps(dict(c.envelope("FR"), extra=1)),
        400,
        "unknown_field",
    ),
    (
        "missing_signature",
        lambda c: dumps({k: v for k, v in c.envelope("FR").items() if k != "signature"}),
        400,
        "missing_field",
    ),
    (
        "uppercase_hex_signer",
        lambda c: dumps(dict(c.envelope("FR"), signer=c.envelope("FR")["signer"].upper())),
        400,
        "bad_hex",
    ),
    (
        "short_signature",
        lambda c: dumps(dict(c.envelope("FR"), signature="ab" * 10)),
        400,
        "bad_hex",
    ),
    (
        "actor_state_wrong_type",
        lambda c: with_record(c, actor={"state": 12, "agency": "x"}),
        422,
        "bad_state",
    ),
    ("nonce_wrong_type", lambda c: with_record(c, nonce=12345678), 422, "bad_nonce"),
    ("bad_evidence_hex", lambda c: with_record(c, evidence=[{"sha256": "XYZ"}]), 422, "bad_hex"),
    ("bad_time", lambda c: with_record(c, occurred_at="2026-02-30T00:00:00Z"), 422, "bad_time"),
    (
        "missing_record_field",
        lambda c: dumps(
            resign(
                dict(
                    c.envelope("FR"),
                    record={k: v for k, v in c.envelope("FR")["record"].items() if k != "nonce"},
                ),
                c.member("FR").investigator,
            )
        ),
        422,
        "missing_field",
    ),
    ("bad_signature", tampered_signature, 422, "bad_signature"),
    ("wrong_chain", lambda c: with_record(c, chain_id="another-chain"), 422, "wrong_chain"),
    ("unknown_type", lambda c: with_record(c, type="telepathy"), 422, "unknown_type"),
    ("clock_skew", lambda c: with_record(c, occurred_at="2099-01-01T00:00:00Z"), 422, "clock_skew"),
    (
        "backdated",
        lambda c: with_record(c, occurred_at="2001-01-01T00:00:00Z"),
        422,
        "occurred_too_early",
    ),
    (
        "unenrolled_signer",
        lambda c: with_record(c, key=SigningKey.generate()),
        403,
        "signer_not_enrolled",
    ),
    (
        "signer_for_another_state",
        lambda c: with_record(c, actor={"state": "TH", "agency": "Royal Thai Police"}),
        403,
        "wrong_state",
    ),
    ("role_not_allowed", enroll_by_investigator, 403, "role_not_allowed"),
]


@pytest.mark.parametrize(
    ("builder", "status", "code"), [pytest.param(b, s, c, id=name) for name, b, s, c in CASES]
)
async def test_bad_submission_is_refused_and_stores_nothing(
    cluster: Cluster, builder: Builder, status: int, code: str
) -> None:
    before = await quiet(cluster)
    response = await cluster.api["FR"].post(
        "/v1/records", content=builder(cluster), headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert set(error) <= {"code", "message", "field"}
    await asyncio.sleep(0.05)
    assert snapshot(cluster) == before


async def test_replayed_envelope_is_idempotent_and_committed_once(cluster: Cluster) -> None:
    before = await quiet(cluster)
    envelope = cluster.envelope("FR")
    responses = [
        await cluster.api[s].post("/v1/records", json=envelope) for s in ("FR", "FR", "TH")
    ]
    # The first is accepted; a repeat answers what the record is by then: still
    # pending (202), or already committed (200) when its block was that quick.
    assert responses[0].status_code == 202
    assert all(
        (r.status_code, r.json()["status"]) in {(202, "pending"), (200, "committed")}
        for r in responses
    )
    record_id = responses[0].json()["id"]
    assert {r.json()["id"] for r in responses} == {record_id}
    assert await cluster.nodes["VN"].wait_committed(record_id, 15)
    replay = await cluster.api["VN"].post("/v1/records", json=envelope)
    assert (replay.status_code, replay.json()["status"]) == (200, "committed")
    after = await quiet(cluster)
    assert [a[1] - b[1] for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]


async def test_duplicate_nonce_with_other_content_is_409(cluster: Cluster) -> None:
    first = cluster.envelope("FR")
    second = cluster.envelope("FR", case_ref="OTHER-CASE")
    second["record"]["nonce"] = first["record"]["nonce"]
    second = resign(second, cluster.member("FR").investigator)
    await quiet(cluster)
    assert (await cluster.api["FR"].post("/v1/records", json=first)).status_code == 202
    clash = await cluster.api["FR"].post("/v1/records", json=second)  # first likely pending
    assert (clash.status_code, clash.json()["error"]["code"]) == (409, "duplicate_nonce")
    committed = await quiet(cluster)
    late = await cluster.api["TH"].post("/v1/records", json=second)  # first committed
    assert (late.status_code, late.json()["error"]["code"]) == (409, "duplicate_nonce")
    assert snapshot(cluster) == committed
    second_id = canonical_sha256(second["record"])
    assert all(n.envelope(second_id) is None for n in cluster.nodes.values())


async def test_batch_with_mixed_items_admits_only_the_good_ones(cluster: Cluster) -> None:
    before = await quiet(cluster)
    good = [cluster.envelope(s) for s in ("FR", "FR")]
    bad_sig = json.loads(tampered_signature(cluster))
    wrong_state = json.loads(with_record(cluster, actor={"state": "VN", "agency": "x"}))
    body = {"envelopes": [good[0], bad_sig, {"record": {}}, wrong_state, good[1], good[0]]}
    response = await cluster.api["FR"].post("/v1/records/batch", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert [r.get("status") for r in results] == ["pending", None, None, None, "pending", "pending"]
    assert [r.get("error", {}).get("code") for r in results] == [
        None,
        "bad_signature",
        "missing_field",
        "wrong_state",
        None,
        None,
    ]
    assert results[5]["id"] == results[0]["id"]
    for result in (results[0], results[4]):
        await cluster.nodes["FR"].wait_committed(result["id"], 15)
    after = await quiet(cluster)
    assert [a[1] - b[1] for a, b in zip(after, before, strict=True)] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(
            lambda c: dumps({"envelopes": [c.envelope("FR")] * 1001}),
            413,
            "batch_too_large",
            id="too_many_items",
        ),
        pytest.param(lambda c: dumps({"items": []}), 400, "bad_type", id="wrong_shape"),
        pytest.param(lambda c: dumps([c.envelope("FR")]), 400, "bad_type", id="bare_list"),
        pytest.param(lambda c: b'{"envelopes": [1.5]}', 400, "float_not_allowed", id="float"),
    ],
)
async def test_bad_batch_is_refused_whole(
    cluster: Cluster, body: Builder, status: int, code: str
) -> None:
    before = await quiet(cluster)
    response = await cluster.api["FR"].post(
        "/v1/records/batch", content=body(cluster), headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    await asyncio.sleep(0.05)
    assert snapshot(cluster) == before


async def test_bad_record_id_in_path_is_400(cluster: Cluster) -> None:
    for path in ("/v1/records/XYZ", f"/v1/records/{'AB' * 32}", "/v1/records/abc/proof"):
        response = await cluster.api["FR"].get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_hex")
