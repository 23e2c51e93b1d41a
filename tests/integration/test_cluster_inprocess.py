"""A 4-node consortium in one process (ASGITransport): records commit everywhere."""

from __future__ import annotations

import asyncio

from ledger.block import verify_certificate
from tests.cluster import Cluster


async def test_records_submitted_to_different_nodes_commit_identically(cluster: Cluster) -> None:
    ids = []
    for i, state in enumerate(cluster.states * 3):
        response = await cluster.api[state].post("/v1/records", json=cluster.envelope(state))
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
        if i % 4 == 3:
            await asyncio.sleep(0.05)
    for record_id in ids:
        response = await cluster.api["FR"].get(f"/v1/records/{record_id}", params={"wait": 15})
        assert response.json()["status"] == "committed", response.text
    top = max(n.app.height for n in cluster.nodes.values())
    await cluster.wait_height(top)
    chains = {state: cluster.block_hashes(state)[:top] for state in cluster.states}
    assert len({tuple(c) for c in chains.values()}) == 1
    node = cluster.nodes["CN"]
    committed = {
        rid for h in range(1, node.app.height + 1) for rid in node.store.get_block_record_ids(h)
    }
    assert set(ids) <= committed
    for height in range(1, top + 1):
        header = node.store.get_header(height)
        cert = node.store.get_certificate(height)
        assert header is not None and cert is not None
        verify_certificate(
            cert, cluster.chain_id, node.app.state.validators(height), header.hash(), height
        )
