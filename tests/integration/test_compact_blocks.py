"""Compact proposals: peers rebuild blocks from their mempools, or fetch them whole.

A proposal carries the header and record ids only. With gossip switched off,
no peer holds the proposer's records, so every peer must fetch the full block
from the proposer (POST /p2p/v1/block) before it can judge it valid. (No peer
answers the records' gossip either, so FR proposes them after SPREAD_WAIT_S.)
"""

from __future__ import annotations

from typing import Any

import pytest

from node.peers import PeerSet
from tests.cluster import Cluster


async def test_blocks_commit_when_peers_must_fetch_them(monkeypatch: pytest.MonkeyPatch) -> None:
    original = PeerSet.broadcast

    def no_gossip(self: PeerSet, item: dict[str, Any], size: int, *,
                  gossip: bool = False, key: str | None = None) -> None:
        if not gossip:
            original(self, item, size)

    monkeypatch.setattr(PeerSet, "broadcast", no_gossip)
    cluster = Cluster(4)
    await cluster.start()
    try:
        ids = []
        for _ in range(3):
            response = await cluster.api["FR"].post("/v1/records", json=cluster.envelope("FR"))
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        for record_id in ids:
            view = (await cluster.api["VN"].get(f"/v1/records/{record_id}",
                                                params={"wait": 20})).json()
            assert view["status"] == "committed", view
        assert all(len(cluster.nodes[s].mempool) == 0 for s in ("CN", "TH", "VN"))
        top = max(n.app.height for n in cluster.nodes.values())
        await cluster.wait_height(top)
        assert len({tuple(cluster.block_hashes(s)[:top]) for s in cluster.states}) == 1
    finally:
        await cluster.stop()
