"""Issue 17 governance on a running in-process consortium (LevelDB stores).

VN rotates its X25519 key by the ceremony of docs/GOVERNANCE.md "Rotating the
encryption key" (``comity enc-key rotate``, a restart on the new key, the
``rotate_enc_key`` record) and still reads details sealed to its old key; a
chain whose genesis predates need to know moves to it by a passed
``set_param`` vote, on every node at the same height.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from api.cli.enc_keys import enc_key, write_enc_key
from ledger.sealed import seal
from node.sealed_access import load_enc_key
from node.tokens import create_token
from tests.cluster import FAST_CONSENSUS, Cluster
from tests.integration.test_governance_cluster import _admin, _committed, _submit, _vote

pytestmark = pytest.mark.cluster(
    on_disk=True, consensus={**FAST_CONSENSUS, "need_to_know_from_height": None}
)
DETAILS = {"account": "user-5150", "note": "sealed to VN"}
PARAM = "need_to_know_from_height"


async def _members(cluster: Cluster, via: str) -> dict[str, dict[str, Any]]:
    reply = await cluster.api[via].get("/v1/members")
    assert reply.status_code == 200, reply.text
    return {row["state"]: row for row in reply.json()["members"]}


async def _sealed_to_vn(cluster: Cluster) -> str:
    """A CN act whose details are sealed to VN's enc_pubkey as the chain serves it."""
    key = bytes.fromhex((await _members(cluster, "CN"))["VN"]["enc_pubkey"])
    envelope = cluster.envelope("CN", sealed=seal(DETAILS, {"VN": key}))
    record_id = await _submit(cluster, "CN", envelope)
    await _committed(cluster, "CN", record_id)
    return record_id


async def _read_on_vn(cluster: Cluster, record_id: str) -> tuple[int, Any]:
    data_dir = cluster.nodes["VN"].config.data_dir
    _, secret = create_token(data_dir, "investigator", "VN investigator")
    reply = await cluster.api["VN"].get(
        f"/v1/records/{record_id}/sealed", headers={"authorization": f"Bearer {secret}"}
    )
    return reply.status_code, reply.json()


async def test_vn_rotates_its_enc_key_and_still_reads_what_was_sealed_before(
    cluster: Cluster, tmp_path: Path
) -> None:
    old_pub = cluster.member("VN").enc_public_hex
    before = await _sealed_to_vn(cluster)
    assert (await _read_on_vn(cluster, before))[1]["details"] == DETAILS
    # The ceremony, step 1: the new key and its keyring. The in-process node has no
    # enc_key_path, so its keyring is DATA_DIR/enc.keyring: write the new key there.
    data_dir = cluster.nodes["VN"].config.data_dir
    write_enc_key(tmp_path / "enc.key", cluster.member("VN").enc)
    result = CliRunner().invoke(
        enc_key,
        ["rotate", "--enc-key", str(tmp_path / "enc.key"), "--out", str(data_dir / "enc.key")],
    )
    assert result.exit_code == 0, result.output
    new_pub = result.stdout.strip()
    # Step 3: restart VN on the new key (the store is kept).
    await cluster.stop(["VN"])
    cluster.join(replace(cluster.member("VN"), enc=load_enc_key(data_dir / "enc.key")))
    await cluster.start(["VN"])
    # Step 4: VN's admin proposes; decided by its own block, no vote.
    height = await _admin(
        cluster, "VN", "member_proposal", action="rotate_enc_key", state="VN", enc_pubkey=new_pub
    )
    for state in cluster.states:
        await cluster.wait_height(height, [state])
        chain = cluster.nodes[state].app.state
        assert chain.enc_pubkey_at("VN", height) == old_pub
        assert chain.enc_pubkey_at("VN", height + 1) == new_pub
        assert (await _members(cluster, state))["VN"]["enc_pubkey"] == new_pub
    rows = (await cluster.api["FR"].get("/v1/proposals", params={"status": "passed"})).json()
    [passed] = [p for p in rows["proposals"] if p["action"] == "rotate_enc_key"]
    assert (passed["state"], passed["decided_at"], passed["votes"]) == ("VN", height, [])
    after = await _sealed_to_vn(cluster)
    for record_id in (before, after):
        status, body = await _read_on_vn(cluster, record_id)
        assert status == 200, body
        assert body["details"] == DETAILS
    # Another member cannot re-key VN, and VN cannot go back to its old key.
    foreign = cluster.envelope(
        "CN",
        type_="member_proposal",
        signer=cluster.member("CN").admin,
        action="rotate_enc_key",
        state="VN",
        enc_pubkey="cd" * 32,
    )
    reply = await cluster.api["CN"].post("/v1/records", json=foreign)
    assert (reply.status_code, reply.json()["error"]["code"]) == (403, "wrong_state")
    back = cluster.envelope(
        "VN",
        type_="member_proposal",
        signer=cluster.member("VN").admin,
        action="rotate_enc_key",
        state="VN",
        enc_pubkey=old_pub,
    )
    reply = await cluster.api["VN"].post("/v1/records", json=back)
    assert reply.status_code == 409, reply.text
    assert (reply.json()["error"]["code"], reply.json()["error"]["field"]) == (
        "enc_key_reused",
        "record.enc_pubkey",
    )


async def test_an_old_chain_moves_to_need_to_know_by_a_passed_set_param_vote(
    cluster: Cluster,
) -> None:
    assert not any(cluster.nodes[s].app.state.need_to_know_active(10**6) for s in cluster.states)
    too_early = cluster.envelope(
        "CN",
        type_="member_proposal",
        signer=cluster.member("CN").admin,
        action="set_param",
        name=PARAM,
        value=cluster.nodes["CN"].app.height + 2,
    )
    reply = await cluster.api["CN"].post("/v1/records", json=too_early)
    assert reply.status_code == 422, reply.text
    assert (reply.json()["error"]["code"], reply.json()["error"]["field"]) == (
        "height_too_early",
        "record.value",
    )
    target = cluster.nodes["CN"].app.height + 40
    proposal = await _submit(
        cluster,
        "CN",
        cluster.envelope(
            "CN",
            type_="member_proposal",
            signer=cluster.member("CN").admin,
            action="set_param",
            name=PARAM,
            value=target,
        ),
    )
    await _committed(cluster, "CN", proposal)
    for state in ("CN", "FR"):
        await _vote(cluster, state, proposal)
    assert cluster.nodes["CN"].app.state.need_to_know_from_height() is None
    decided = await _vote(cluster, "TH", proposal)
    for state in cluster.states:
        await cluster.wait_height(decided, [state])
        chain = cluster.nodes[state].app.state
        assert chain.need_to_know_from_height() == target
        assert not chain.need_to_know_active(target - 1) and chain.need_to_know_active(target)
        rows = (await cluster.api[state].get("/v1/proposals")).json()["proposals"]
        [row] = [p for p in rows if p["id"] == proposal]
        assert (row["status"], row["state"], row["decided_at"]) == (
            "passed",
            f"param:{PARAM}",
            decided,
        )
    # The validator set did not change.
    assert cluster.nodes["FR"].app.state.changes == ()
