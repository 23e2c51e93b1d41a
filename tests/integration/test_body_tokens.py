"""Who reads a private body on a party's node: tokens bound to state, role and case.

CN files a private preservation request about a provider in TH, in one case. On
TH's node a token bound to that case reads the body, one bound to another case
does not (403 ``case_not_allowed``, logged), an auditor's token for all cases
and an operator's read no body (403 ``role_not_allowed``) and see headers only
through the list views. TH's access log holds exactly the attempts on the body,
signed by TH's node key. Issue 17 "Need to know on a node too", finding L5.
"""

from __future__ import annotations

import secrets

import pytest

from node.access_log import verify_log
from node.tokens import create_token
from tests.cluster import Cluster
from tests.integration.test_need_to_know import _act, _file

pytestmark = pytest.mark.cluster(on_disk=True)


def _bearer(cluster: Cluster, role: str, *cases: str) -> dict[str, str]:
    data_dir = cluster.nodes["TH"].config.data_dir
    _, secret = create_token(data_dir, role, f"TH {role}", state="TH", cases=cases)
    return {"authorization": f"Bearer {secret}"}


async def test_body_reads_follow_the_token_binding(cluster: Cluster) -> None:
    marker = f"MARKER-{secrets.token_hex(8)}"
    case = f"CN-BIND-{secrets.token_hex(4)}"
    record = _act(
        cluster,
        "CN",
        "preservation_request",
        case_ref=case,
        custodian={"name": f"Provider {marker}", "kind": "service_provider", "state": "TH"},
    )
    act_id = await _file(cluster, "CN", cluster.member("CN").investigator, record, retain_s=600)
    api, path = cluster.api["TH"], f"/v1/records/{act_id}/private"

    expected = [
        (_bearer(cluster, "investigator", case), 200, None),
        (_bearer(cluster, "investigator", "TH-OTHER-1"), 403, "case_not_allowed"),
        (_bearer(cluster, "auditor"), 403, "role_not_allowed"),
        (_bearer(cluster, "auditor", case), 200, None),
        (_bearer(cluster, "operator"), 403, "role_not_allowed"),
        ({}, 401, "token_required"),
    ]
    for headers, status, code in expected:
        reply = await api.get(path, headers=headers)
        assert reply.status_code == status, reply.text
        assert (marker in reply.text) == (status == 200), reply.text
        if code is not None:
            assert reply.json()["error"]["code"] == code

    for role, cases in (("operator", ()), ("auditor", ()), ("investigator", ("TH-OTHER-1",))):
        for view in ("/v1/sovereignty/notices", f"/v1/acts/{act_id}"):
            reply = await api.get(view, headers=_bearer(cluster, role, *cases))
            assert reply.status_code == 200, (role, view, reply.text)
            assert marker not in reply.text, (role, view)  # the header only

    log = await api.get("/v1/access-log", headers=_bearer(cluster, "auditor"))
    entries = log.json()["entries"]
    assert [(e["record_id"], e["role"], e["outcome"]) for e in entries] == [
        (act_id, "investigator", "ok"),
        (act_id, "investigator", "case_not_allowed"),
        (act_id, "auditor", "ok"),
    ]
    th_key = cluster.nodes["TH"].key.public_hex
    log_path = cluster.nodes["TH"].config.data_dir / "access-log.jsonl"
    verdict = verify_log(log_path, [th_key], head=(2, log.json()["head"]["hash"]))
    assert verdict.ok and verdict.unsigned_entries == 0, verdict
