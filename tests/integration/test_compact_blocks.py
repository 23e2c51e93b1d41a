"""Compact proposals: peers rebuild blocks from their mempools and the records the
proposal carries, or fetch them whole.

A proposal carries the header and record ids, plus in full the proposer's own
clients' records that some peer has not acknowledged (their gossip may still
be on its way). With gossip switched off no peer holds the proposer's records:
they must arrive in the proposal, or, when the proposer does not carry them,
every peer must fetch the full block from the proposer (POST /p2p/v1/block)
before it can judge it valid.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ledger.records import Envelope
from node import wire
from node.mempool import Mempool
from node.sync import BlockSync
from tests.cluster import Cluster, gossip_off


def _count_fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    fetched: list[str] = []
    original = BlockSync.fetch_block

    def counting(self: BlockSync, block_hash: str, height: int, prefer: str | None) -> None:
        fetched.append(block_hash)
        original(self, block_hash, height, prefer)

    monkeypatch.setattr(BlockSync, "fetch_block", counting)
    return fetched


async def _commit_three_on_every_node(cluster: Cluster) -> None:
    ids = []
    for _ in range(3):
        response = await cluster.api["FR"].post("/v1/records", json=cluster.envelope("FR"))
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for record_id in ids:
        view = (await cluster.api["VN"].get(f"/v1/records/{record_id}", params={"wait": 20})).json()
        assert view["status"] == "committed", view
    assert all(len(cluster.nodes[s].mempool) == 0 for s in ("CN", "TH", "VN"))
    top = max(n.app.height for n in cluster.nodes.values())
    await cluster.wait_height(top)
    assert len({tuple(cluster.block_hashes(s)[:top]) for s in cluster.states}) == 1


@pytest.mark.parametrize(
    "carry_all_bytes",
    [wire.CARRY_ALL_BYTES_MAX, 0],
    ids=["small-block-carries-all", "unacknowledged-only"],
)
async def test_the_proposal_carries_records_its_peers_have_not_acknowledged(
    monkeypatch: pytest.MonkeyPatch, carry_all_bytes: int
) -> None:
    gossip_off(monkeypatch)
    monkeypatch.setattr(wire, "CARRY_ALL_BYTES_MAX", carry_all_bytes)
    fetched = _count_fetches(monkeypatch)
    cluster = Cluster(4)
    await cluster.start()
    try:
        await _commit_three_on_every_node(cluster)
        assert fetched == [], "a peer fetched a block whose records the proposal carried"
    finally:
        await cluster.stop()


async def test_blocks_commit_when_peers_must_fetch_them(monkeypatch: pytest.MonkeyPatch) -> None:
    gossip_off(monkeypatch)
    # Negative control: the proposer carries nothing, so peers must fetch.
    monkeypatch.setattr(Mempool, "is_spreading", lambda self, record_id: False)
    monkeypatch.setattr(wire, "CARRY_ALL_BYTES_MAX", 0)
    fetched = _count_fetches(monkeypatch)
    cluster = Cluster(4)
    await cluster.start()
    try:
        await _commit_three_on_every_node(cluster)
        assert fetched, "no peer fetched a block, yet none held its records"
    finally:
        await cluster.stop()


async def test_a_forged_carried_record_fails_validation_and_the_chain_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Hostile: what a proposal carries is checked like any record. VN receives
    # the carried records with their signatures replaced (as a Byzantine
    # proposer could send them): it must refuse the block, and the other three
    # still commit it; VN then catches up with the true records.
    from node.inbound import Inbound
    from node.runtime import Node

    gossip_off(monkeypatch)
    cluster = Cluster(4)
    vn: Node = cluster.nodes["VN"]
    original = Inbound._carried

    def forged(self: Inbound, raw: Any, named: dict[str, str]) -> dict[str, Envelope]:
        carried = original(self, raw, named)
        if self is not vn.inbound:
            return carried
        return {rid: dataclasses.replace(e, signature="ab" * 64) for rid, e in carried.items()}

    monkeypatch.setattr(Inbound, "_carried", forged)
    await cluster.start()
    try:
        await _commit_three_on_every_node(cluster)
        assert vn.driver.stats.invalid_blocks >= 1
        for block_hash in cluster.block_hashes("VN"):
            block = vn.block_by_hash(block_hash)
            assert block is not None
            assert all(e.signature != "ab" * 64 for e in block.envelopes)
    finally:
        await cluster.stop()


def test_carried_records_are_parsed_only_when_missing_and_must_match_their_ids() -> None:
    from ledger import merkle
    from ledger.canonical import canonical_bytes
    from ledger.errors import ClientError, PeerFault
    from tests.factory import EnvelopeMaker, key

    maker, signer = EnvelopeMaker(), key("carrier")
    held, lacked = maker.make(signer), maker.make(signer)
    pool = Mempool(10, 1 << 20)
    pool.add(held)

    def carried(raw: Any, named: dict[str, str]) -> dict[str, Envelope]:
        def pending(rid: str, leaf: str | None) -> bool:
            return leaf is not None and pool.get_leaf(rid, leaf) is not None

        return wire.carried_records(raw, named, pending, 65_536)

    named = {e.id: merkle.leaf_hash(e.leaf).hex() for e in (held, lacked)}
    raw = {held.id: {"not": "parsed: we hold it"}, lacked.id: lacked.to_json()}
    assert carried(raw, named) == {lacked.id: lacked}
    assert carried(None, named) == {}
    # We hold another envelope of that record (finding C1): the carried one is used.
    other = {held.id: "00" * 32, lacked.id: named[lacked.id]}
    with pytest.raises(ClientError):
        carried(raw, other)  # so it is parsed (and here it is not an envelope)
    with pytest.raises(PeerFault, match="has id"):  # carried under another id
        carried({"0" * 64: lacked.to_json()}, {"0" * 64: "00" * 32})
    with pytest.raises(PeerFault, match="at most"):
        carried({lacked.id: lacked.to_json(), "x": {}}, {lacked.id: "00" * 32})
    with pytest.raises(PeerFault):
        carried([lacked.to_json()], named)  # the old list form is refused
    assert canonical_bytes(lacked.to_json()) == lacked.leaf
