"""Sealed details of a private act over HTTP on the 4-node consortium (CN, FR, TH, VN).

CN files a private preservation request about a provider in TH, with details
sealed to TH and CN, and a second one in the same case with no sealed details.
``GET /v1/records/{id}/sealed`` opens the details on the parties' nodes (they
travel in the body, not the header). On FR's and VN's nodes, which hold the
headers only, ``/sealed`` answers what ``/private`` answers, byte for byte, for
both acts: a non-party cannot tell which act has details. docs/PRIVACY.md
"Reading on a node".
"""

from __future__ import annotations

import json
import secrets

import pytest

from ledger.sealed import seal
from node.tokens import create_token
from tests.cluster import Cluster
from tests.integration.test_need_to_know import OTHERS, PARTIES, _act, _file

pytestmark = pytest.mark.cluster(on_disk=True)


def _bearer(cluster: Cluster, state: str, *cases: str) -> dict[str, str]:
    data_dir = cluster.nodes[state].config.data_dir
    _, secret = create_token(data_dir, "investigator", state, state=state, cases=cases)
    return {"authorization": f"Bearer {secret}"}


async def test_a_private_acts_sealed_details_open_on_its_parties_nodes_only(
    cluster: Cluster,
) -> None:
    marker = f"user-{secrets.token_hex(8)}"
    details = {"subscriber": marker}
    case = f"CN-SEAL-{secrets.token_hex(4)}"
    to = {s: cluster.member(s).enc.public_key().public_bytes_raw() for s in PARTIES}
    custodian = {"name": "Provider", "kind": "service_provider", "state": "TH"}
    signer = cluster.member("CN").investigator
    sealed_act = _act(
        cluster, "CN", "preservation_request", case_ref=case, custodian=custodian,
        sealed=seal(details, to),
    )  # fmt: skip
    sealed_id = await _file(cluster, "CN", signer, sealed_act, retain_s=600)
    bare_act = _act(cluster, "CN", "preservation_request", case_ref=case, custodian=custodian)
    bare_id = await _file(cluster, "CN", signer, bare_act, retain_s=600)

    for state in PARTIES:
        reply = await cluster.api[state].get(
            f"/v1/records/{sealed_id}/sealed", headers=_bearer(cluster, state, case)
        )
        assert reply.status_code == 200, reply.text
        assert (reply.json()["details"], reply.json()["state"]) == (details, state)
        bare = await cluster.api[state].get(
            f"/v1/records/{bare_id}/sealed", headers=_bearer(cluster, state)
        )
        assert (bare.status_code, bare.json()["error"]["code"]) == (404, "no_sealed_details")
    elsewhere = await cluster.api["TH"].get(
        f"/v1/records/{sealed_id}/sealed", headers=_bearer(cluster, "TH", "TH-OTHER-1")
    )
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (403, "case_not_allowed")
    assert marker not in elsewhere.text

    for state in OTHERS:
        headers = _bearer(cluster, state)
        answers = {
            (await cluster.api[state].get(f"/v1/records/{rid}/{what}", headers=headers)).text
            for rid in (sealed_id, bare_id)
            for what in ("sealed", "private")
        }
        assert len(answers) == 1, answers
        (answer,) = answers
        assert marker not in answer
        assert json.loads(answer)["error"] == {
            "code": "not_a_party",
            "field": "id",
            "message": f"{state} is not a party of this act",
        }

    log = await cluster.api["TH"].get(
        "/v1/access-log", headers={"authorization": _auditor(cluster, "TH")}
    )
    assert [(e["record_id"], e["outcome"]) for e in log.json()["entries"]] == [
        (sealed_id, "ok"),
        (sealed_id, "case_not_allowed"),
    ]
    fr_log = await cluster.api["FR"].get(
        "/v1/access-log", headers={"authorization": _auditor(cluster, "FR")}
    )
    assert [e["outcome"] for e in fr_log.json()["entries"]] == ["not_a_recipient"] * 4


def _auditor(cluster: Cluster, state: str) -> str:
    _, secret = create_token(cluster.nodes[state].config.data_dir, "auditor", f"{state} audit")
    return f"Bearer {secret}"
