"""Need to know on the 4-node consortium (CN, FR, TH, VN): a private act's body reaches
only its parties' nodes, every node verifies the chain, and retention erases the body.

CN files a preservation request about a provider in TH with a unique marker in its
private fields. TH sees the notice and answers it (privately too); FR and VN serve the
header only, and the marker is nowhere in their data directories, in clear or base64.
After ``retain_until`` the parties' nodes purge the body (a ``body_purge`` record each),
the marker leaves CN's and TH's stores, and a bundle exported before still verifies.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.cli import audit as cli_audit
from api.cli.audit_client import HttpSource, verify_chain
from ledger.acts_templates import template
from ledger.audit.bundle import verify_bundle
from ledger.audit.chain import ChainVerifier, genesis_hash
from ledger.audit.gov import AuditFailure
from ledger.audit_source import build_bundle
from ledger.canonical import canonical_bytes
from ledger.keys import SigningKey
from ledger.private import split
from ledger.records import format_time
from node.authoring import private_submission, sign_envelope
from node.bodies import BodyPool
from node.clock import utcnow
from node.inbound import BATCH
from node.privacy import BODIES
from node.tokens import create_token
from tests.cluster import Cluster

pytestmark = pytest.mark.cluster(on_disk=True)

PARTIES = ("CN", "TH")
OTHERS = ("FR", "VN")


def _act(cluster: Cluster, state: str, type_: str, **fields: Any) -> dict[str, Any]:
    cluster.nonce += 1
    record = template(type_, state=state, territorial_states=("TH",), now=utcnow())
    record.update(
        chain_id=cluster.chain_id,
        nonce=f"ntk{cluster.nonce:012d}",
        actor={"state": state, "agency": f"{cluster.member(state).name} cybercrime unit"},
        **fields,
    )
    return record


def _parties_of(cluster: Cluster) -> Any:
    def ref_parties(record_id: str) -> list[str]:
        store = cluster.nodes["CN"].store
        envelope = cluster.nodes["CN"].app.load_envelope(record_id)
        del store
        return list(envelope.record.get("parties") or [])

    return ref_parties


async def _file(
    cluster: Cluster, state: str, signer: SigningKey, record: dict[str, Any], retain_s: float
) -> str:
    until = format_time(utcnow() + timedelta(seconds=retain_s))
    submission = private_submission(
        signer, record, retain_until=until, ref_parties=_parties_of(cluster)
    )
    reply = await cluster.api[state].post("/v1/records", json=submission)
    assert reply.status_code == 202, reply.text
    record_id: str = reply.json()["id"]
    view = await cluster.api[state].get(f"/v1/records/{record_id}", params={"wait": 20})
    assert view.json()["status"] == "committed", view.text
    await cluster.wait_height(view.json()["height"])
    return record_id


def _token(cluster: Cluster, state: str, role: str = "investigator") -> dict[str, str]:
    _, secret = create_token(cluster.nodes[state].config.data_dir, role, f"{state} {role}")
    return {"authorization": f"Bearer {secret}"}


def _files_holding(directory: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(needle in data for needle in needles):
                found.append(str(path))
    return found


def _needles(marker: str) -> list[bytes]:
    raw = marker.encode()
    # base64 of the marker at each of the three byte alignments
    shifted = [base64.b64encode(b"x" * i + raw)[4 * ((i + 2) // 3) :][:-4] for i in range(3)]
    return [raw, *(s for s in shifted if len(s) >= 8)]


async def test_a_private_act_reaches_only_its_parties_and_is_purged(cluster: Cluster) -> None:
    marker = f"MARKER-{secrets.token_hex(8)}"
    record = _act(
        cluster,
        "CN",
        "preservation_request",
        case_ref=f"CN-NTK-{marker}",
        custodian={"name": f"Provider {marker}", "kind": "service_provider", "state": "TH"},
    )
    act_id = await _file(cluster, "CN", cluster.member("CN").investigator, record, retain_s=6)

    # TH is a party: its node holds the body, sees the notice and answers it.
    for state in PARTIES:
        reply = await cluster.api[state].get(
            f"/v1/records/{act_id}/private", headers=_token(cluster, state)
        )
        assert reply.status_code == 200, reply.text
        assert marker in reply.text
    notices = await cluster.api["TH"].get("/v1/sovereignty/notices", headers=_token(cluster, "TH"))
    assert [n["id"] for n in notices.json()["notices"]] == [act_id], notices.text
    answer = _act(cluster, "TH", "sovereignty_response", refs=[act_id], case_ref=record["case_ref"])
    answer_id = await _file(cluster, "TH", cluster.member("TH").authority, answer, retain_s=6)
    answered = await cluster.api["TH"].get("/v1/sovereignty/notices", headers=_token(cluster, "TH"))
    assert answered.json()["notices"][0]["status"] == "answered", answered.text

    # FR and VN: the header only, through every endpoint; the marker nowhere on disk.
    for state in OTHERS:
        api = cluster.api[state]
        view = await api.get(f"/v1/records/{act_id}")
        assert view.status_code == 200
        assert view.json()["envelope"]["record"]["type"] == "private_act"
        assert view.json()["envelope"]["record"]["parties"] == ["CN", "TH"]
        refused = await api.get(f"/v1/records/{act_id}/private", headers=_token(cluster, state))
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_a_party")
        for path in (
            f"/v1/cases/{record['case_ref']}",
            "/v1/sovereignty/notices",
            f"/v1/acts/{act_id}",
            "/v1/blocks/latest?envelopes=true",
        ):
            reply = await api.get(path, headers=_token(cluster, state))
            assert reply.status_code == 200, (path, reply.text)
            shown = {k: v for k, v in reply.json().items() if k != "case_ref"}  # the query
            assert marker not in str(shown), (state, path)
        assert cluster.nodes[state].store.get_body(act_id) is None
    for state in OTHERS:
        data_dir = cluster.nodes[state].config.data_dir
        assert _files_holding(data_dir, _needles(marker)) == [], state

    # Every node's chain verifies, trusting none of them.
    height = cluster.nodes["CN"].app.height
    await cluster.wait_height(height)
    genesis = cluster.genesis.to_json()
    for state in cluster.states:
        point = await verify_chain(cluster.api[state], ChainVerifier(genesis))
        assert point.height >= height, state

    # A bundle CN exports now (with a body reader's token) carries the body.
    bundle = await build_bundle(HttpSource(cluster.api["CN"]), [act_id])
    cluster.api["CN"].headers.update(_token(cluster, "CN"))
    await cli_audit._add_bodies(cluster.api["CN"], bundle)
    del cluster.api["CN"].headers["authorization"]
    assert set(bundle["private"]) == {act_id}

    # Retention ends: each party's node purges its copy, by a record on the chain.
    for node in cluster.nodes.values():
        node.privacy.purge_every_s = 0.2

    async def purged() -> None:
        while any(
            cluster.nodes[s].store.get_body(i) is not None
            for s in PARTIES
            for i in (act_id, answer_id)
        ):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(purged(), 30)
    purges = await cluster.api["FR"].get("/v1/search", params={"type": "body_purge"})
    assert purges.status_code == 200, purges.text
    purgers = sorted(r["actor_state"] for r in purges.json()["results"])
    assert set(purgers) >= {"CN", "TH"}, purges.text
    for state in PARTIES:
        data_dir = cluster.nodes[state].config.data_dir
        assert _files_holding(data_dir / "ledger", _needles(marker)) == [], state
        gone = await cluster.api[state].get(
            f"/v1/records/{act_id}/private", headers=_token(cluster, state)
        )
        assert (gone.status_code, gone.json()["error"]["code"]) == (404, "body_purged")
        point = await verify_chain(cluster.api[state], ChainVerifier(genesis))
        assert point.height >= height, state

    # The bundle exported before the purge still proves the content, offline.
    report = verify_bundle(bundle, pinned_genesis_hash=genesis_hash(genesis))
    (proven,) = report.records
    assert proven.record["custodian"]["name"] == f"Provider {marker}"
    forged = json.loads(json.dumps(bundle))
    forged["private"][act_id]["act"]["custodian"]["name"] = "someone else"
    with pytest.raises(AuditFailure, match="body_mismatch"):
        verify_bundle(forged, pinned_genesis_hash=genesis_hash(genesis))


async def test_bodies_go_to_parties_only_and_a_late_party_fetches_its_own(
    cluster: Cluster,
) -> None:
    """Peers' faults with bodies are refused and counted; a party that lost a body
    before its header committed fetches it from another party's node."""
    cn, fr, th = (cluster.nodes[s] for s in ("CN", "FR", "TH"))
    # TH keeps no body before commit (a full pool): it must fetch it afterwards.
    th.app.bodies = BodyPool(max_entries=0)
    th.privacy.app.bodies = th.app.bodies
    record = _act(cluster, "CN", "preservation_request", case_ref="CN-NTK-LATE")
    act_id = await _file(cluster, "CN", cluster.member("CN").investigator, record, retain_s=3600)
    assert th.store.body_note(act_id) in ({"status": "wanted"}, {"status": "kept"})

    async def fetched() -> None:
        while th.store.body_note(act_id) != {"status": "kept"}:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(fetched(), 10)
    assert th.app.load_content(act_id).content["case_ref"] == "CN-NTK-LATE"

    # A non-party's node asks for the body: refused, and counted.
    reply, status = await th.inbound.handle(BODIES, fr.key.public_hex, {"ids": [act_id]})
    assert (status, reply["error"]["code"]) == (403, "not_a_party")
    assert th.peer_faults["non-party asked for a body"] == 1
    assert fr.store.get_body(act_id) is None

    # A party's node pushes a body that does not match its header: refused, counted.
    header, body = split(
        _act(cluster, "CN", "preservation_request"),
        retain_until=format_time(utcnow() + timedelta(hours=1)),
        ref_parties=_parties_of(cluster),
    )
    envelope = sign_envelope(cluster.member("CN").investigator, header)
    forged = json.loads(json.dumps(body))
    forged["act"]["case_ref"] = "CN-FORGED"
    items = [{"record": envelope}, {"body": {"id": _record_id(header), "private": forged}}]
    await th.inbound.handle(BATCH, cn.key.public_hex, {"items": items})
    assert th.peer_faults["body does not match its commitment"] == 1
    assert _record_id(header) not in th.app.bodies

    # A body pushed to a non-party's node: refused, counted, never kept.
    items = [{"record": envelope}, {"body": {"id": _record_id(header), "private": body}}]
    await fr.inbound.handle(BATCH, cn.key.public_hex, {"items": items})
    assert fr.peer_faults["body sent to a non-party"] == 1
    assert _record_id(header) not in fr.app.bodies

    # A body from a node whose state is no party: refused even at a party.
    await th.inbound.handle(BATCH, fr.key.public_hex, {"items": items})
    assert th.peer_faults["body sent by a non-party"] == 1
    assert _record_id(header) not in th.app.bodies


def _record_id(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(record)).hexdigest()
