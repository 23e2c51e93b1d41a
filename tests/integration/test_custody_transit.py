"""Issue 20's done-when for custody on the 4-node consortium (CN, FR, TH, VN), with
private acts: a one-sided transfer shows "in transit" on every party node until the
receiver signs.

CN asks TH for evidence (an MLA request); TH answers ``evidence_transferred`` with
the hash, which introduces the hash and makes the custody chain TH's. Every act is
private to CN and TH. TH collects and transfers to CN: both party nodes show the
item in transit from TH to CN, since the transfer; FR and VN hold headers only and
show no custody of the hash. VN cannot record the receipt (its node cannot read the
answer: 422), nor can TH for CN (403); CN records ``received`` with the hash it
recomputed, and both party nodes then show CN holding it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.acts_templates import template
from ledger.keys import SigningKey
from ledger.records import format_time
from node.authoring import private_submission
from node.clock import utcnow
from node.tokens import create_token
from tests.cluster import Cluster

pytestmark = pytest.mark.cluster(on_disk=True)

H = "c7" * 32
CASE = "CN-2026-CUSTODY-1"
PARTIES, OTHERS = ("CN", "TH"), ("FR", "VN")


def _act(cluster: Cluster, state: str, type_: str, **fields: Any) -> dict[str, Any]:
    cluster.nonce += 1
    record = template(type_, state=state, territorial_states=("TH",), now=utcnow())
    record.update(
        chain_id=cluster.chain_id,
        nonce=f"cus{cluster.nonce:012d}",
        actor={"state": state, "agency": f"{cluster.member(state).name} unit"},
        case_ref=CASE,
        **fields,
    )
    return record


def _submission(cluster: Cluster, signer: SigningKey, record: dict[str, Any]) -> dict[str, Any]:
    def ref_parties(record_id: str) -> list[str]:
        envelope = cluster.nodes["CN"].app.load_envelope(record_id)
        return list(envelope.record.get("parties") or [])

    until = format_time(utcnow() + timedelta(days=30))
    return private_submission(signer, record, retain_until=until, ref_parties=ref_parties)


async def _file(cluster: Cluster, state: str, signer: SigningKey, record: dict[str, Any]) -> str:
    reply = await cluster.api[state].post("/v1/records", json=_submission(cluster, signer, record))
    assert reply.status_code == 202, reply.text
    record_id: str = reply.json()["id"]
    view = await cluster.api[state].get(f"/v1/records/{record_id}", params={"wait": 20})
    assert view.json()["status"] == "committed", view.text
    await cluster.wait_height(view.json()["height"])
    return record_id


def _token(cluster: Cluster, state: str) -> dict[str, str]:
    _, secret = create_token(cluster.nodes[state].config.data_dir, "investigator", state)
    return {"authorization": f"Bearer {secret}"}


async def _custody_everywhere(cluster: Cluster) -> dict[str, Any]:
    views = {}
    for state in cluster.states:
        reply = await cluster.api[state].get(f"/v1/evidence/{H}", headers=_token(cluster, state))
        views[state] = reply
    for state in OTHERS:  # headers only: the hash is not theirs to see
        assert views[state].status_code == 404, views[state].text
        assert views[state].json()["error"]["code"] == "evidence_not_found"
    chains: dict[str, dict[str, Any]] = {}
    for state in PARTIES:
        assert views[state].status_code == 200, views[state].text
        [chains[state]] = views[state].json()["custody_chains"]
    assert chains["CN"] == chains["TH"]
    return chains["CN"]


def _custody(
    cluster: Cluster, state: str, answer: str, action: str, **fields: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "action": action,
        "refs": [answer],
        "evidence": [{"sha256": H}],
        "territorial_states": [state],
        "location": {"state": state, "place": f"{state} evidence room"},
        "purpose": {"code": "mutual_assistance"},
        **fields,
    }
    return _act(cluster, state, "custody_event", **record)


async def test_a_one_sided_transfer_is_in_transit_on_every_party_node(cluster: Cluster) -> None:
    cn, th, vn = cluster.member("CN"), cluster.member("TH"), cluster.member("VN")
    request = await _file(cluster, "CN", cn.authority, _act(cluster, "CN", "mla_request"))
    answer = await _file(
        cluster,
        "TH",
        th.authority,
        _act(
            cluster,
            "TH",
            "mla_response",
            refs=[request],
            territorial_states=["TH"],
            status="evidence_transferred",
            evidence=[{"sha256": H}],
        ),
    )
    await _file(cluster, "TH", th.investigator, _custody(cluster, "TH", answer, "collected"))
    transfer_record = _custody(
        cluster, "TH", answer, "transferred", to={"state": "CN", "agency": "CN forensic lab"}
    )
    transfer = await _file(cluster, "TH", th.investigator, transfer_record)

    chain = await _custody_everywhere(cluster)
    assert (chain["introduced_by"], chain["status"], chain["holder"]) == ("TH", "in_transit", "TH")
    assert chain["in_transit"] == {
        "from": "TH",
        "to": "CN",
        "transfer_id": transfer,
        "since": transfer_record["occurred_at"],
    }

    def received(state: str) -> dict[str, Any]:
        return _custody(
            cluster,
            state,
            answer,
            "received",
            refs=[answer, transfer],
            hash_check="verified",
            recomputed_sha256=H,
        )

    # VN is no party: its node holds the answer's header only, so VN cannot even name it
    # as the act that introduced the hash (on a clear chain: 403 not_named_receiver,
    # tests/unit/test_custody.py).
    reply = await cluster.api["VN"].post(
        "/v1/records", json=_submission(cluster, vn.investigator, received("VN"))
    )
    assert (reply.status_code, reply.json()["error"]["code"], reply.json()["error"]["field"]) == (
        422,
        "ref_wrong_type",
        "record.refs[0]",
    ), reply.text
    reply = await cluster.api["TH"].post(
        "/v1/records", json=_submission(cluster, th.investigator, received("TH"))
    )
    assert (reply.status_code, reply.json()["error"]["code"]) == (403, "not_named_receiver")
    assert (await _custody_everywhere(cluster))["status"] == "in_transit"

    await _file(cluster, "CN", cn.investigator, received("CN"))
    chain = await _custody_everywhere(cluster)
    assert (chain["status"], chain["holder"], chain["integrity"]) == ("received", "CN", "intact")
    assert "in_transit" not in chain
    assert [e["action"] for e in chain["events"]] == ["collected", "transferred", "received"]
    assert chain["events"][2]["recomputed_sha256"] == H
