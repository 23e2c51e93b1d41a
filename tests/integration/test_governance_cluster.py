"""Governance in a running in-process consortium: membership votes, re-keying, misbehaviour.

One scenario walks a consortium through admission, removal and a node-key
rotation, since each step builds on the chain the previous one made; each
phase asserts its own outcome (docs/GOVERNANCE.md states the rules).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from api.cli.bootstrap import MemberKeys
from consensus.messages import Equivocation, Vote, is_equivocation, message_from_json
from consensus.signing import Ed25519Verifier
from ledger.block import validators_hash, verify_certificate, vote_sign_bytes
from ledger.keys import SigningKey
from node.clock import now_ms
from node.wire import sign_request
from tests.cluster import Cluster, Switch


async def _submit(cluster: Cluster, via: str, envelope: dict[str, Any]) -> str:
    response = await cluster.api[via].post("/v1/records", json=envelope)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def _committed(cluster: Cluster, via: str, record_id: str) -> int:
    response = await cluster.api[via].get(f"/v1/records/{record_id}", params={"wait": 15})
    body = response.json()
    assert body["status"] == "committed", body
    return int(body["height"])


async def _admin(cluster: Cluster, state: str, type_: str, /, **fields: Any) -> int:
    """Submit a governance record signed by ``state``'s admin; return its commit height."""
    envelope = cluster.envelope(state, type_=type_, signer=cluster.member(state).admin, **fields)
    return await _committed(cluster, state, await _submit(cluster, state, envelope))


async def _advance(cluster: Cluster, states: list[str], height: int) -> None:
    """Make blocks (heartbeats are off) until every node in ``states`` reached ``height``."""
    for _ in range(40):
        if all(cluster.nodes[s].app.height >= height for s in states):
            return
        record_id = await _submit(cluster, states[0], cluster.envelope(states[0]))
        await _committed(cluster, states[0], record_id)
    await cluster.wait_height(height, states)


async def _signs_certificates(cluster: Cluster, states: list[str], pubkey: str) -> int:
    """Commit blocks until one certificate holds ``pubkey``'s precommit; return its height."""
    store = cluster.nodes[states[0]].store
    for _ in range(30):
        await _advance(cluster, states, store.height + 1)
        cert = store.get_certificate(store.height)
        assert cert is not None
        if any(sig.validator == pubkey for sig in cert.signatures):
            return cert.height
    raise AssertionError(f"{pubkey[:16]} signed no certificate")


async def _vote(cluster: Cluster, state: str, proposal: str) -> int:
    return await _admin(cluster, state, "member_vote", proposal=proposal, vote="yes")


async def _proposal_status(cluster: Cluster, via: str, proposal: str) -> str:
    rows = (await cluster.api[via].get("/v1/proposals")).json()["proposals"]
    return str(next(p["status"] for p in rows if p["id"] == proposal))


async def test_admit_remove_and_rekey_members_by_votes_on_the_chain(tmp_path: Path) -> None:
    cluster = Cluster(4, data_root=tmp_path)
    running = list(cluster.states)
    stopped: set[str] = set()
    await cluster.start()
    try:
        # 1. Admission of BR: proposed by CN, 2 of 4 yes is not enough, 3 of 4 is.
        br = MemberKeys.generate("BR", "Brazil")
        cluster.transports["BR"] = Switch()  # "http://br.p2p" is reachable once BR starts
        envelope = cluster.envelope(
            "CN",
            type_="member_proposal",
            signer=cluster.member("CN").admin,
            action="add",
            state="BR",
            name="Brazil",
            node_pubkey=br.node.public_hex,
            admin_pubkeys=[br.admin.public_hex],
            enc_pubkey=br.enc_public_hex,
            p2p_url="http://br.p2p",
        )
        proposal = await _submit(cluster, "CN", envelope)
        await _committed(cluster, "CN", proposal)
        genesis_set = cluster.nodes["CN"].app.state.validators(1)
        for state in ("CN", "FR"):
            await _vote(cluster, state, proposal)
        assert await _proposal_status(cluster, "TH", proposal) == "open"
        decided = await _vote(cluster, "TH", proposal)
        assert await _proposal_status(cluster, "VN", proposal) == "passed"
        await _advance(cluster, running, decided + 3)
        five = cluster.nodes["CN"].app.state.validators(decided + 2)
        assert [v.state for v in five] == ["BR", "CN", "FR", "TH", "VN"]
        for state in running:  # identically on every node, exactly at H+2
            headers = [cluster.nodes[state].store.get_header(decided + d) for d in (1, 2)]
            assert [h.validators_hash for h in headers if h] == [
                validators_hash(genesis_set),
                validators_hash(five),
            ]
        shown = (
            await cluster.api["FR"].get("/v1/validators", params={"height": decided + 2})
        ).json()
        assert shown["since_height"] == decided + 2
        assert shown["changes"][0]["record_ids"][0] == proposal

        # 2. BR's node starts on a fresh store, syncs from genesis checking every
        # certificate against its height's set, then votes in consensus.
        cluster.join(br)
        await cluster.start(["BR"])
        running.append("BR")
        top = cluster.nodes["CN"].app.height
        await cluster.wait_height(top, ["BR"], timeout_s=20)
        driver = cluster.nodes["BR"].driver
        assert driver.stats.synced_blocks >= decided + 2 and driver.stats.rejected_sync == {}
        await _signs_certificates(cluster, ["CN"], br.node.public_hex)

        # 3. Removal of TH needs 4 of 5 (3 of 5 is not > 2/3); BR's admin votes too.
        removal = await _submit(
            cluster,
            "FR",
            cluster.envelope(
                "FR",
                type_="member_proposal",
                signer=cluster.member("FR").admin,
                action="remove",
                state="TH",
            ),
        )
        await _committed(cluster, "FR", removal)
        for state in ("CN", "FR", "BR"):
            await _vote(cluster, state, removal)
        assert await _proposal_status(cluster, "CN", removal) == "open"
        removed_at = await _vote(cluster, "VN", removal)
        running.remove("TH")
        await _advance(cluster, running, removed_at + 4)  # the remaining four commit
        # TH's node is no validator from H+2 on, and its peers no longer answer it.
        assert cluster.nodes["TH"].app.height <= removed_at + 1
        await cluster.stop(["TH"])
        stopped.add("TH")
        assert [v.state for v in cluster.nodes["CN"].app.state.validators(removed_at + 2)] == [
            "BR",
            "CN",
            "FR",
            "VN",
        ]

        # 4. VN's admin re-keys its node: no vote, effective at H+2; the old key is then
        # refused on the P2P wire, and VN restarted with the new key takes part again.
        old = cluster.member("VN").node
        new_key = SigningKey.generate()
        rotated_at = await _admin(
            cluster,
            "VN",
            "member_proposal",
            action="rotate_key",
            state="VN",
            node_pubkey=new_key.public_hex,
        )
        await _advance(cluster, ["CN", "FR", "BR"], rotated_at + 3)
        body, signed = sign_request(
            old,
            cluster.chain_id,
            "/p2p/v1/status",
            cluster.nodes["CN"].key.public_hex,
            {},
            now_ms(),
        )
        refused = await cluster.transports["CN"].handle_async_request(
            _request("http://cn.p2p/p2p/v1/status", body, signed.headers())
        )
        assert refused.status_code == 403
        await cluster.stop(["VN"])
        cluster.join(replace(cluster.member("VN"), node=new_key))
        await cluster.start(["VN"])
        await _signs_certificates(cluster, ["CN", "VN"], new_key.public_hex)
        node = cluster.nodes["VN"]
        for height in range(1, node.app.height + 1):  # every certificate, by its own set
            header, cert = node.store.get_header(height), node.store.get_certificate(height)
            assert header is not None and cert is not None
            verify_certificate(
                cert, cluster.chain_id, node.app.state.validators(height), header.hash(), height
            )
    finally:
        await cluster.stop([s for s in cluster.nodes if s not in stopped])


def _request(url: str, body: bytes, headers: dict[str, str]) -> httpx.Request:
    return httpx.Request("POST", url, content=body, headers=headers)


async def test_a_double_vote_becomes_a_verifiable_misbehaviour_record(cluster: Cluster) -> None:
    record_id = await _submit(cluster, "CN", cluster.envelope("CN"))
    await _committed(cluster, "CN", record_id)
    await cluster.wait_height(cluster.nodes["CN"].app.height)
    fr = cluster.member("FR").node
    height = cluster.nodes["CN"].app.height + 1
    votes = [
        Vote(
            "prevote",
            height,
            0,
            value,
            fr.public_hex,
            fr.sign(vote_sign_bytes("prevote", cluster.chain_id, height, 0, value)).hex(),
        )
        for value in ("aa" * 32, "bb" * 32)
    ]
    body, signed = sign_request(
        fr,
        cluster.chain_id,
        "/p2p/v1/batch",
        cluster.nodes["CN"].key.public_hex,
        {"items": [{"msg": v.to_json()} for v in votes]},
        now_ms(),
    )
    reply = await cluster.transports["CN"].handle_async_request(
        _request("http://cn.p2p/p2p/v1/batch", body, signed.headers())
    )
    assert reply.status_code == 200
    await _advance(cluster, ["TH"], height + 1)  # the report rides in a later block
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        rows = (await cluster.api["VN"].get("/v1/misbehaviour", params={"state": "FR"})).json()[
            "misbehaviour"
        ]
        if rows:
            break
        await asyncio.sleep(0.05)
    assert [(r["offender_pubkey"], r["height"], r["kind"]) for r in rows] == [
        (fr.public_hex, height, "prevote")
    ]
    stored = (await cluster.api["TH"].get(f"/v1/records/{rows[0]['record_id']}")).json()
    record = stored["envelope"]["record"]
    evidence = Equivocation(
        message_from_json(record["equivocation"]["first"]),
        message_from_json(record["equivocation"]["second"]),
    )
    assert is_equivocation(evidence, cluster.chain_id, Ed25519Verifier())
    # A forgery (second vote's signature broken) is refused at the API.
    forged_second = {**votes[1].to_json(), "signature": "00" * 64}
    forged = cluster.envelope(
        "CN",
        type_="misbehaviour",
        signer=cluster.member("CN").node,
        offender_state="FR",
        offender_pubkey=fr.public_hex,
        equivocation={"first": votes[0].to_json(), "second": forged_second},
    )
    response = await cluster.api["CN"].post("/v1/records", json=forged)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "not_equivocation"
