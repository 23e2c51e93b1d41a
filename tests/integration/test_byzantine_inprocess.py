"""Byzantine members and keys against the real node code (in-process cluster).

Each test reproduces one finding of the review of b40cc0b (C1, C3, C4, B2) on
four real ``Node`` objects wired by ``httpx.ASGITransport``; it failed on that
commit, and asserts what must hold now: the honest nodes keep committing,
agree, and never judge an honest block invalid.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from ledger.block import proposal_sign_bytes
from ledger.canonical import canonical_bytes
from ledger.errors import InvariantViolation
from ledger.hashing import sha256_hex
from ledger.keys import SigningKey
from node.blockcache import PROPOSER_BLOCKS_MAX
from node.byzantine import sign_with_nonce
from node.clock import now_ms
from node.driver import Driver
from node.signing_hold import HOLD_NAME, encode_hold
from node.wire import sign_request
from tests.cluster import Cluster, Switch, gossip_off

HONEST = ("CN", "FR", "TH")


async def _p2p(
    cluster: Cluster, key: SigningKey, to: str, path: str, payload: dict[str, Any]
) -> httpx.Response:
    """A request signed by ``key`` (a validator's node key) to ``to``'s P2P endpoint."""
    receiver = cluster.member(to).node.public_hex
    body, signed = sign_request(key, cluster.chain_id, path, receiver, payload, now_ms())
    headers = signed.headers()
    transport = cluster.transports[to]
    async with httpx.AsyncClient(transport=transport, base_url="http://p2p") as client:
        return await client.post(path, content=body, headers=headers)


async def _committed(
    cluster: Cluster, record_id: str, states: tuple[str, ...], wait_s: float = 20
) -> bool:
    views = await asyncio.gather(
        *(cluster.api[s].get(f"/v1/records/{record_id}", params={"wait": wait_s}) for s in states)
    )
    return all(v.json().get("status") == "committed" for v in views)


def _agree(cluster: Cluster, states: tuple[str, ...]) -> None:
    top = min(cluster.nodes[s].app.height for s in states)
    chains = {tuple(cluster.block_hashes(s)[:top]) for s in states}
    assert len(chains) == 1, "honest nodes disagree"


async def test_c1_two_envelopes_of_one_record_on_different_nodes_do_not_halt_the_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """C1: CN's investigator signs one record twice (two valid signatures) and gives
    one envelope to CN and FR, the other to TH and VN. With gossip off every node
    holds only its own version, so every compact proposal is rebuilt from the
    wrong one at half the validators. The chain must still commit the record
    (one of its envelopes) and an unrelated one, and no honest block may be
    judged invalid."""
    gossip_off(monkeypatch)
    cluster = Cluster()
    await cluster.start()
    try:
        env = cluster.envelope("CN")
        key = cluster.member("CN").investigator
        env2 = {**env, "signature": sign_with_nonce(key, canonical_bytes(env["record"])).hex()}
        assert env2["signature"] != env["signature"]
        posts = await asyncio.gather(
            *(
                cluster.api[s].post("/v1/records", json=e)
                for s, e in (("CN", env), ("FR", env), ("TH", env2), ("VN", env2))
            )
        )
        assert [p.status_code for p in posts] == [202] * 4, [p.text for p in posts]
        record_id = posts[0].json()["id"]
        other = await cluster.api["FR"].post("/v1/records", json=cluster.envelope("FR"))
        assert other.status_code == 202
        everyone = tuple(cluster.states)
        assert await _committed(cluster, other.json()["id"], everyone)
        assert await _committed(cluster, record_id, everyone)
        _agree(cluster, tuple(cluster.states))
        assert sum(n.driver.stats.invalid_blocks for n in cluster.nodes.values()) == 0
    finally:
        await cluster.stop()


def _junk_header(cluster: Cluster, height: int, i: int) -> dict[str, Any]:
    return {
        "chain_id": cluster.chain_id,
        "height": height,
        "time": f"junk-{i}",
        "prev_hash": "00" * 32,
        "proposer": "VN",
        "record_count": 0,
        "ledger_size": 0,
        "ledger_root": "00" * 32,
        "validators_hash": "00" * 32,
    }


def _header_hash(header: dict[str, Any]) -> str:
    return sha256_hex(canonical_bytes(header))


@pytest.mark.parametrize("kind", ["unsigned_votes", "junk_proposals"])
async def test_c3_junk_blocks_do_not_fill_the_block_cache(kind: str) -> None:
    """C3: VN (its node down; the attacker holds its node key) sends each honest node
    one signed batch of 64 junk blocks attached to unsigned votes, or to proposals
    with a bad signature. Nothing unverified may enter the block cache, and the
    chain keeps committing."""
    cluster = Cluster()
    await cluster.start(list(HONEST))
    try:
        first = await cluster.api["CN"].post("/v1/records", json=cluster.envelope("CN"))
        assert await _committed(cluster, first.json()["id"], HONEST)
        height = min(cluster.nodes[s].app.height for s in HONEST)
        vn_key = cluster.member("VN").node
        items = []
        for i in range(64):
            header = _junk_header(cluster, height + 1 + i % 2, i)
            block_hash = _header_hash(header)
            if kind == "unsigned_votes":
                msg = {
                    "kind": "vote",
                    "type": "prevote",
                    "height": header["height"],
                    "round": 0,
                    "block_hash": block_hash,
                    "validator": "11" * 32,
                    "signature": "22" * 64,
                }
            else:
                msg = {
                    "kind": "proposal",
                    "height": header["height"],
                    "round": i,
                    "block_hash": block_hash,
                    "valid_round": -1,
                    "proposer": vn_key.public_hex,
                    "signature": "00" * 64,
                }
            items.append({"msg": msg, "block": {"header": header, "envelopes": []}})
        for state in HONEST:
            reply = await _p2p(cluster, vn_key, state, "/p2p/v1/batch", {"items": items})
            assert reply.status_code == 200, reply.text
        for state in HONEST:
            assert len(cluster.nodes[state].driver.blocks) <= 2, state
        second = await cluster.api["FR"].post("/v1/records", json=cluster.envelope("FR"))
        assert await _committed(cluster, second.json()["id"], HONEST)
        _agree(cluster, HONEST)
    finally:
        await cluster.stop(list(HONEST))


async def test_c3_signed_proposals_of_a_byzantine_proposer_stay_within_its_quota() -> None:
    """VN signs genuine proposals (a valid signature, VN the proposer of the round)
    with junk blocks for every round it leads at the next two heights. They may
    be cached only within VN's quota, so they never crowd out an honest block."""
    cluster = Cluster()
    await cluster.start(list(HONEST))
    try:
        first = await cluster.api["CN"].post("/v1/records", json=cluster.envelope("CN"))
        assert await _committed(cluster, first.json()["id"], HONEST)
        height = min(cluster.nodes[s].app.height for s in HONEST)
        vn_key = cluster.member("VN").node
        index = sorted(cluster.states).index("VN")
        items = []
        for h in (height + 1, height + 2):
            for r in [r for r in range(40) if (h + r) % 4 == index][:8]:
                header = _junk_header(cluster, h, r)
                block_hash = _header_hash(header)
                signature = vn_key.sign(
                    proposal_sign_bytes(cluster.chain_id, h, r, block_hash, -1)
                ).hex()
                msg = {
                    "kind": "proposal",
                    "height": h,
                    "round": r,
                    "block_hash": block_hash,
                    "valid_round": -1,
                    "proposer": vn_key.public_hex,
                    "signature": signature,
                }
                items.append({"msg": msg, "block": {"header": header, "envelopes": []}})
        for state in HONEST:
            reply = await _p2p(cluster, vn_key, state, "/p2p/v1/batch", {"items": items})
            assert reply.status_code == 200, reply.text
        await asyncio.sleep(0.2)
        for state in HONEST:
            driver = cluster.nodes[state].driver
            from_vn = [h for h, m in driver.blocks.meta.items() if m[2] == vn_key.public_hex]
            assert len(from_vn) <= PROPOSER_BLOCKS_MAX, (state, len(from_vn))
        second = await cluster.api["FR"].post("/v1/records", json=cluster.envelope("FR"))
        assert await _committed(cluster, second.json()["id"], HONEST)
        _agree(cluster, HONEST)
    finally:
        await cluster.stop(list(HONEST))


class _Liar(httpx.AsyncBaseTransport):
    """Whoever answers at VN's P2P URL: every reply claims a huge height; block
    requests get no blocks."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if request.url.path == "/p2p/v1/blocks":
            body = {"height": 10**9, "blocks": []}
        else:
            body = {"height": 10**9, "state": "VN"}
        return httpx.Response(
            200, content=orjson.dumps(body), headers={"content-type": "application/json"}
        )


async def test_c4_a_peer_claiming_a_huge_height_does_not_stop_voting() -> None:
    """C4: VN's URL answers every request with height 10^9 and no blocks. The honest
    three must keep committing and must not report themselves as syncing."""
    cluster = Cluster()
    switch = Switch()
    switch.target = _Liar()
    cluster.transports["VN"] = switch
    await cluster.start(list(HONEST))
    try:
        ids = []
        for i in range(6):
            state = HONEST[i % 3]
            reply = await cluster.api[state].post("/v1/records", json=cluster.envelope(state))
            assert reply.status_code == 202
            ids.append(reply.json()["id"])
        for record_id in ids:
            assert await _committed(cluster, record_id, HONEST)
        for state in HONEST:
            assert cluster.nodes[state].status()["syncing"] is False
        _agree(cluster, HONEST)
    finally:
        switch.target = None
        await cluster.stop(list(HONEST))


async def test_b2_a_proposal_that_arrives_without_its_block_is_fetched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """B2: CN's proposals leave without their block (as after a restart, or relayed
    by a node that lacks it). Its peers must fetch the block by hash and decide
    CN's round-0 proposals in round 0, instead of timing out to the next
    proposer every time."""
    original = Driver._send

    def send_bare(self: Driver, msg: Any) -> None:
        if self.key.public_hex == cluster.member("CN").node.public_hex:
            self.broadcast({"msg": msg.to_json()}, 400)
        else:
            original(self, msg)

    monkeypatch.setattr(Driver, "_send", send_bare)
    cluster = Cluster()
    await cluster.start()
    try:
        rounds = []
        for _ in range(4):  # proposer(h, 0) cycles through the four members
            reply = await cluster.api["FR"].post("/v1/records", json=cluster.envelope("FR"))
            record_id = reply.json()["id"]
            assert await _committed(cluster, record_id, tuple(cluster.states))
        store = cluster.nodes["FR"].store
        for height in range(1, store.height + 1):
            header, cert = store.get_header(height), store.get_certificate(height)
            assert header is not None and cert is not None
            rounds.append((header.proposer, cert.round))
        assert ("CN", 0) in rounds, rounds
    finally:
        await cluster.stop()


async def test_b3_a_driver_stopped_by_a_local_bug_fails_readiness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An InvariantViolation in the driver stops it (not logged as a peer's fault),
    and /readyz then answers 503 naming why."""
    cluster = Cluster()
    await cluster.start()
    try:
        ready = await cluster.api["CN"].get("/readyz")
        for _ in range(100):
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.05)
            ready = await cluster.api["CN"].get("/readyz")
        assert ready.status_code == 200, ready.text
        driver = cluster.nodes["CN"].driver

        async def broken(event: object) -> None:
            raise InvariantViolation("engine state torn")

        monkeypatch.setattr(driver, "_dispatch", broken)
        driver.wake()
        await asyncio.sleep(0.1)
        ready = await cluster.api["CN"].get("/readyz")
        assert ready.status_code == 503
        assert "engine state torn" in ready.json()["failed"]
    finally:
        await cluster.stop()


async def test_b5_a_restored_node_does_not_sign_at_held_heights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """B5: VN's store carries a restore hold through height 3 (its key may have signed
    there before the restore). VN must sign nothing at heights 1-3 and catch them up
    by block sync; from height 4 on it votes again."""
    cluster = Cluster()
    vn = cluster.nodes["VN"]
    vn.store.put_state(HOLD_NAME, encode_hold(3, 0), sync=True)
    vn_key = cluster.member("VN").node.public_hex
    signed: list[int] = []
    original = Driver._send

    def watching(self: Driver, msg: Any) -> None:
        if self.key.public_hex == vn_key:
            signed.append(msg.height)
        original(self, msg)

    monkeypatch.setattr(Driver, "_send", watching)
    await cluster.start()
    try:
        for _ in range(6):
            reply = await cluster.api["CN"].post("/v1/records", json=cluster.envelope("CN"))
            assert await _committed(cluster, reply.json()["id"], tuple(cluster.states))
        assert signed and min(signed) > 3, sorted(set(signed))
        _agree(cluster, tuple(cluster.states))
    finally:
        await cluster.stop()
