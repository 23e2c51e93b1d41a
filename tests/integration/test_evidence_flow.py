"""A cross-border case end to end on the 4-node in-process consortium (CN, FR, TH, VN).

CN preserves data at a provider in Thailand (with details sealed to TH and
CN), TH's authority acknowledges, CN's authority sends an MLA request that
TH answers, and the evidence moves TH -> CN under custody events (TH sends, CN
records it received). Every
node must then show the same case timeline, sovereignty report, deadlines
and custody; each node shows its own state's notices; only TH and CN can
read the sealed details, and every read is in the node's access log.

WIRING: until the lead wires the catalogue into the node, the ``wired``
fixture does it by monkeypatching two seams, exactly as the lead should:
``register_acts`` on the registry ``Node`` builds, and ``check_act_context``
at the end of ``Application.check_record``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from ledger.keys import SigningKey
from ledger.records import format_time
from ledger.sealed import seal
from node.clock import utcnow
from node.tokens import create_token
from tests.cluster import Cluster

CASE = "CN-2026-E2E-7"
H1 = "e1" * 32
CUSTODIAN = {"name": "Example Hosting (Thailand) Co", "state": "TH"}
SEALED_DETAILS = {"accounts": ["user-4411", "user-9020"], "note": "alias of subject A"}

pytestmark = pytest.mark.cluster(on_disk=True)  # each test: a fresh cluster on LevelDB


async def _post(cluster: Cluster, state: str, type_: str, signer: SigningKey, **fields: Any) -> Any:
    envelope = cluster.envelope(
        state, type_=type_, signer=signer, **{"case_ref": CASE, "evidence": [], **fields}
    )
    return await cluster.api[state].post("/v1/records", json=envelope)


async def _commit(
    cluster: Cluster, state: str, type_: str, signer: SigningKey, **fields: Any
) -> str:
    response = await _post(cluster, state, type_, signer, **fields)
    assert response.status_code == 202, response.text
    record_id: str = response.json()["id"]
    view = await cluster.api[state].get(f"/v1/records/{record_id}", params={"wait": 20})
    assert view.json()["status"] == "committed", view.text
    await cluster.wait_height(view.json()["height"])
    return record_id


async def _refused(
    cluster: Cluster,
    state: str,
    type_: str,
    signer: SigningKey,
    expect: tuple[int, str],
    **fields: Any,
) -> None:
    response = await _post(cluster, state, type_, signer, **fields)
    assert (response.status_code, response.json()["error"]["code"]) == expect, response.text


def _token(cluster: Cluster, state: str, role: str, *cases: str) -> dict[str, str]:
    _, secret = create_token(
        cluster.nodes[state].config.data_dir, role, f"{state} {role}", state=state, cases=cases
    )
    return {"authorization": f"Bearer {secret}"}


async def _get_all(cluster: Cluster, path: str, **params: Any) -> dict[str, Any]:
    replies = await asyncio.gather(
        *(cluster.api[s].get(path, params=params) for s in cluster.states)
    )
    for reply in replies:
        assert reply.status_code == 200, reply.text
    return {state: reply.json() for state, reply in zip(cluster.states, replies, strict=True)}


def _same_everywhere(replies: dict[str, Any]) -> Any:
    first = next(iter(replies.values()))
    assert all(reply == first for reply in replies.values()), replies
    return first


async def _build_case(cluster: Cluster) -> dict[str, str]:
    cn, th = cluster.member("CN"), cluster.member("TH")
    now = utcnow()
    sealed = seal(
        SEALED_DETAILS, {s: bytes.fromhex(cluster.member(s).enc_public_hex) for s in ("TH", "CN")}
    )
    ids = {
        "preservation": await _commit(
            cluster,
            "CN",
            "preservation_request",
            cn.investigator,
            territorial_states=["TH"],
            evidence=[{"sha256": H1}],
            custodian=CUSTODIAN,
            data_category=["subscriber", "traffic"],
            expires_at=format_time(now + timedelta(days=60)),
            channel="24_7_network",
            legal_basis={"instrument": "Budapest Convention", "article": "Art 29"},
            sealed=sealed,
        )
    }
    ids["ack"] = await _commit(
        cluster,
        "TH",
        "sovereignty_response",
        th.authority,
        territorial_states=["TH"],
        refs=[ids["preservation"]],
        response="acknowledged",
    )
    ids["mla"] = await _commit(
        cluster,
        "CN",
        "mla_request",
        cn.authority,
        territorial_states=["TH"],
        refs=[ids["preservation"]],
        requesting_authority="CN central authority",
        requested_state="TH",
        requested_authority="TH Office of the Attorney General",
        measures=["produce the preserved subscriber and traffic data"],
        legal_basis={"instrument": "Budapest Convention", "article": "Art 27"},
    )
    ids["emergency"] = await _commit(
        cluster,
        "CN",
        "emergency_disclosure",
        cn.authority,
        territorial_states=["TH"],
        justification="imminent threat to a victim",
        custodian=CUSTODIAN,
        respond_by=format_time(now + timedelta(days=1)),
    )
    ids["answer"] = await _commit(
        cluster,
        "TH",
        "mla_response",
        th.authority,
        territorial_states=["TH"],
        refs=[ids["mla"]],
        status="evidence_transferred",
        evidence=[{"sha256": H1}],
    )
    # TH's answer introduces the hash, so the custody chain is TH's to start.
    custody = {"refs": [ids["answer"]], "evidence": [{"sha256": H1}]}
    ids["collected"] = await _commit(
        cluster,
        "TH",
        "custody_event",
        th.investigator,
        territorial_states=["TH"],
        action="collected",
        **custody,
    )
    ids["transferred"] = await _commit(
        cluster,
        "TH",
        "custody_event",
        th.investigator,
        territorial_states=["TH"],
        action="transferred",
        to={"state": "CN", "agency": "CN forensic lab"},
        **custody,
    )
    # Catalogue version 3: in transit until CN records it received with the hash it
    # recomputed (docs/ACTS.md §5).
    ids["received"] = await _commit(
        cluster,
        "CN",
        "custody_event",
        cn.investigator,
        territorial_states=["CN"],
        action="received",
        hash_check="verified",
        recomputed_sha256=H1,
        **{**custody, "refs": [ids["answer"], ids["transferred"]]},
    )
    ids["examined"] = await _commit(
        cluster,
        "CN",
        "custody_event",
        cn.investigator,
        territorial_states=["CN"],
        action="examined",
        **custody,
    )
    return ids


async def _hostile_submissions(cluster: Cluster, ids: dict[str, str]) -> None:
    vn, cn, th = cluster.member("VN"), cluster.member("CN"), cluster.member("TH")
    answer = {
        "territorial_states": ["VN"],
        "refs": [ids["preservation"]],
        "response": "objected",
        "reason": "not on our territory",
    }
    await _refused(
        cluster, "VN", "sovereignty_response", vn.authority, (403, "not_territorial"), **answer
    )
    await _refused(
        cluster,
        "TH",
        "sovereignty_response",
        th.investigator,
        (403, "role_not_allowed"),
        **{**answer, "territorial_states": ["TH"]},
    )
    await _refused(
        cluster,
        "TH",
        "mla_response",
        th.authority,
        (422, "ref_wrong_type"),
        territorial_states=["TH"],
        refs=[ids["preservation"]],
        status="executed",
    )
    custody = {"refs": [ids["answer"]], "evidence": [{"sha256": H1}]}
    await _refused(
        cluster,
        "VN",
        "custody_event",
        vn.investigator,
        (403, "not_custody_holder"),
        territorial_states=["VN"],
        action="examined",
        **custody,
    )
    await _refused(
        cluster,
        "CN",
        "custody_event",
        cn.investigator,
        (422, "custody_out_of_order"),
        territorial_states=["CN"],
        action="collected",
        **custody,
    )
    await _refused(
        cluster,
        "CN",
        "preservation_request",
        cn.investigator,
        (422, "invalid_act"),
        territorial_states=["TH"],
        custodian=CUSTODIAN,
        data_category=["traffic"],
        expires_at=format_time(utcnow() + timedelta(days=91)),
    )


async def test_cross_border_case_is_seen_alike_on_every_node(cluster: Cluster) -> None:
    ids = await _build_case(cluster)
    await _hostile_submissions(cluster, ids)

    timeline = _same_everywhere(await _get_all(cluster, f"/v1/cases/{CASE}"))
    assert [e["id"] for e in timeline["entries"]] == list(ids.values())
    assert timeline["states"] == ["CN", "TH"]

    act = _same_everywhere(await _get_all(cluster, f"/v1/acts/{ids['preservation']}"))
    assert act["sovereignty"] == {"TH": "acknowledged"}
    assert [a["id"] for a in act["answers"]] == [ids["ack"]]

    report = _same_everywhere(await _get_all(cluster, "/v1/sovereignty/report", state="TH"))
    assert report["rows"] == [
        {"actor_state": "CN", "type": "emergency_disclosure", "response": "pending", "count": 1},
        {"actor_state": "CN", "type": "mla_request", "response": "pending", "count": 1},
        {
            "actor_state": "CN",
            "type": "preservation_request",
            "response": "acknowledged",
            "count": 1,
        },
    ]
    csv_reply = await cluster.api["VN"].get(
        "/v1/sovereignty/report", params={"state": "TH", "format": "csv"}
    )
    assert csv_reply.headers["content-type"].startswith("text/csv")
    assert csv_reply.text.splitlines()[0] == "actor_state,type,response,count"
    assert "CN,preservation_request,acknowledged,1" in csv_reply.text.splitlines()

    notices = await _get_all(cluster, "/v1/sovereignty/notices")
    assert [(n["id"], n["status"]) for n in notices["TH"]["notices"]] == [
        (ids["preservation"], "answered"),
        (ids["mla"], "pending"),
        (ids["emergency"], "pending"),
    ]
    assert notices["TH"]["notices"][0]["response"]["answer"] == "acknowledged"
    assert all(notices[s]["notices"] == [] for s in ("CN", "FR", "VN"))
    pending = await cluster.api["TH"].get(
        "/v1/sovereignty/notices", params={"status": "pending", "limit": 1}
    )
    assert [n["id"] for n in pending.json()["notices"]] == [ids["mla"]]
    assert pending.json()["next_cursor"] is not None

    custody = _same_everywhere(await _get_all(cluster, f"/v1/evidence/{H1}"))
    [chain] = custody["custody_chains"]
    assert (chain["ref"], chain["introduced_by"]) == (ids["answer"], "TH")
    assert (chain["status"], chain["holder"]) == ("examined", "CN")
    assert [e["action"] for e in chain["events"]] == [
        "collected",
        "transferred",
        "received",
        "examined",
    ]
    assert custody["records"][0]["id"] == ids["preservation"]

    await _check_deadlines(cluster, ids)
    await _check_sealed(cluster, ids["preservation"])


async def _check_deadlines(cluster: Cluster, ids: dict[str, str]) -> None:
    soon = _same_everywhere(
        await _get_all(cluster, "/v1/deadlines", within_days=7, at=format_time(utcnow()))
    )
    assert [(i["id"], i["clock"], i["status"]) for i in soon["items"]] == [
        (ids["emergency"], "emergency_answer", "running")
    ]
    later = format_time(utcnow() + timedelta(days=58))
    late = _same_everywhere(await _get_all(cluster, "/v1/deadlines", within_days=7, at=later))
    assert [(i["id"], i["clock"], i["status"]) for i in late["items"]] == [
        (ids["emergency"], "emergency_answer", "overdue"),
        (ids["preservation"], "preservation_expiry", "warning"),
    ]
    # The MLA request was answered, and it followed the preservation: those clocks stopped.
    stopped = _same_everywhere(
        await _get_all(cluster, "/v1/deadlines", within_days=90, at=later, status="stopped")
    )
    assert sorted((i["clock"], i["stopped_by"]["id"]) for i in stopped["items"]) == [
        ("art29_minimum_preservation", ids["mla"]),
        ("mla_answer", ids["answer"]),
        ("mla_before_preservation_expiry", ids["mla"]),
    ]


async def _check_sealed(cluster: Cluster, record_id: str) -> None:
    path = f"/v1/records/{record_id}/sealed"
    for state in ("TH", "CN"):
        reply = await cluster.api[state].get(path, headers=_token(cluster, state, "investigator"))
        assert reply.status_code == 200, reply.text
        assert reply.json()["details"] == SEALED_DETAILS
    for state in ("VN", "FR"):
        reply = await cluster.api[state].get(path, headers=_token(cluster, state, "investigator"))
        assert (reply.status_code, reply.json()["error"]["code"]) == (403, "not_a_recipient")
        assert "user-4411" not in reply.text
    assert (await cluster.api["TH"].get(path)).json()["error"]["code"] == "token_required"
    await _check_need_to_know(cluster, path)

    log = await cluster.api["TH"].get(
        "/v1/access-log", params={"verify": "true"}, headers=_token(cluster, "TH", "auditor")
    )
    assert log.status_code == 200, log.text
    body = log.json()
    assert [(e["record_id"], e["outcome"], e["role"]) for e in body["entries"]] == [
        (record_id, "ok", "investigator"),
        (record_id, "ok", "auditor"),
        (record_id, "case_not_allowed", "investigator"),
    ]
    th_key = cluster.nodes["TH"].key.public_hex
    assert {e["signer"] for e in body["entries"]} == {th_key}
    assert body["verification"]["ok"] and body["head"]["seq"] == 2
    operator = _token(cluster, "TH", "operator")
    vn_log = await cluster.api["VN"].get("/v1/access-log", headers=operator)
    assert vn_log.status_code == 401  # TH's token means nothing to VN's node
    vn_log = await cluster.api["VN"].get(
        "/v1/access-log", headers=_token(cluster, "VN", "operator")
    )
    assert [e["outcome"] for e in vn_log.json()["entries"]] == ["not_a_recipient"]
    investigator = _token(cluster, "TH", "investigator")
    assert (await cluster.api["TH"].get("/v1/access-log", headers=investigator)).status_code == 403


async def _check_need_to_know(cluster: Cluster, path: str) -> None:
    """Who may read TH's sealed details besides a plain investigator (issue 17, L5)."""
    refused = [
        (_token(cluster, "TH", "operator"), "role_not_allowed"),
        (_token(cluster, "TH", "auditor"), "role_not_allowed"),  # for all cases: no body
    ]
    for headers, code in refused:
        reply = await cluster.api["TH"].get(path, headers=headers)
        assert (reply.status_code, reply.json()["error"]["code"]) == (403, code), reply.text
        assert "user-4411" not in reply.text
    bound = await cluster.api["TH"].get(path, headers=_token(cluster, "TH", "auditor", CASE))
    assert bound.status_code == 200 and bound.json()["details"] == SEALED_DETAILS
    elsewhere = _token(cluster, "TH", "investigator", "TH-2026-OTHER")
    reply = await cluster.api["TH"].get(path, headers=elsewhere)
    assert (reply.status_code, reply.json()["error"]) == (
        403,
        {
            "code": "case_not_allowed",
            "field": "case_ref",
            "message": "this token is not bound to the record's case",
        },
    )
    assert "user-4411" not in reply.text


async def test_schemas_endpoint_lists_every_act_type(cluster: Cluster) -> None:
    reply = await cluster.api["FR"].get("/v1/schemas")
    assert reply.status_code == 200
    body = reply.json()
    assert "sovereignty_response" in body["types"] and "eio_response" in body["types"]
    assert body["catalogue_version"] == 3
    assert body["versions"] == [
        {"version": 1, "from_height": 1},
        {"version": 2, "from_height": 1},
        {"version": 3, "from_height": 1},
    ]
    old = (await cluster.api["FR"].get("/v1/schemas", params={"version": 1})).json()
    assert old["catalogue_version"] == 1 and "eio_response" not in old["types"]
    assert old["types"]["sovereignty_response"] != body["types"]["sovereignty_response"]
    v2 = (await cluster.api["FR"].get("/v1/schemas", params={"version": 2})).json()
    assert "location" in body["types"]["custody_event"]["properties"]
    assert "location" not in v2["types"]["custody_event"]["properties"]
    bad = await cluster.api["FR"].get("/v1/schemas", params={"version": 4})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "query.version"
    status = (await cluster.api["FR"].get("/v1/status")).json()
    assert status["catalogue_version"] == 3


BAD_READS: list[tuple[str, dict[str, str | int], int, str]] = [
    ("/v1/evidence/xyz", {}, 400, "bad_hex"),
    (f"/v1/evidence/{'ab' * 32}", {}, 404, "evidence_not_found"),
    (f"/v1/acts/{'ab' * 32}", {}, 404, "record_not_found"),
    ("/v1/acts/nothex", {}, 400, "bad_hex"),
    ("/v1/sovereignty/notices", {"cursor": "-1"}, 400, "bad_cursor"),
    ("/v1/sovereignty/notices", {"status": "ignored"}, 400, "invalid_request"),
    ("/v1/sovereignty/report", {"state": "th"}, 400, "bad_state"),
    ("/v1/sovereignty/report", {"from": "yesterday"}, 400, "bad_time"),
    # Well-formed but impossible: still a malformed query (400), not a broken rule.
    ("/v1/sovereignty/report", {"from": "2026-13-01T00:00:00Z"}, 400, "bad_time"),
    ("/v1/deadlines", {"within_days": -1}, 400, "invalid_request"),
    ("/v1/deadlines", {"at": "2026-13-01T00:00:00Z"}, 400, "bad_time"),
    (f"/v1/cases/{'x' * 129}", {}, 400, "bad_query"),
]


async def test_bad_reads_get_stable_error_codes(cluster: Cluster) -> None:
    for path, params, status, code in BAD_READS:
        reply = await cluster.api["FR"].get(path, params=params)
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), (
            path,
            reply.text,
        )
    empty = await cluster.api["FR"].get("/v1/cases/NO-SUCH-CASE")
    assert empty.json()["entries"] == [] and empty.json()["next_cursor"] is None
