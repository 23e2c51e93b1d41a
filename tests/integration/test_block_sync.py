"""Block sync over many replies: a node far behind catches up, then votes again.

Block sync is a pipeline (node/sync.py ``BlockSync._sync_from``): a fetcher task
reads and verifies replies ahead while the driver applies the blocks before
them. With ``sync_batch_blocks = 1`` every block is its own reply, so the
pipeline's queue fills and drains many times; a lost end-of-sync marker or a
reply applied out of order would leave the node stuck or diverged here.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ledger.block import CommitCertificate
from node.application import Block
from node.runtime import Node
from tests.cluster import FAST_CONSENSUS, Cluster, Switch

BEHIND_BLOCKS = 9


async def _commit_one(cluster: Cluster, states: list[str]) -> int:
    node = cluster.nodes[states[0]]
    target = node.app.height + 1
    reply = await cluster.api[states[0]].post("/v1/records", json=cluster.envelope(states[0]))
    assert reply.status_code == 202, reply.text
    await cluster.wait_height(target, states)
    return target


async def test_a_node_many_replies_behind_catches_up_and_votes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Heartbeat blocks every 300 ms: the others keep going while VN catches up,
    # so VN must sync again after its first session (which must therefore end).
    cluster = Cluster(
        4, data_root=tmp_path, consensus={**FAST_CONSENSUS, "heartbeat_interval_ms": 300}
    )
    running = ["CN", "FR", "TH"]  # 3 of 4: a quorum without VN
    lagger = cluster.nodes["VN"]
    limits = lagger.config.limits.model_copy(update={"sync_batch_blocks": 1})
    cluster.nodes["VN"] = Node(
        lagger.config.model_copy(update={"limits": limits}),
        genesis=cluster.genesis,
        key=cluster.member("VN").node,
        store=lagger.store,
        transports=cluster.transports,
        enc_key=cluster.member("VN").enc,
    )
    # A slow disk on VN: the fetcher runs ahead, and its queue is full when it ends.
    slow_commit = cluster.nodes["VN"].app.commit

    def commit(block: Block, certificate: CommitCertificate) -> None:
        time.sleep(0.05)
        slow_commit(block, certificate)

    monkeypatch.setattr(cluster.nodes["VN"].app, "commit", commit)
    cluster.transports["VN"] = Switch()  # peers reach VN through it once it starts
    await cluster.start(running)
    try:
        for _ in range(BEHIND_BLOCKS):
            top = await _commit_one(cluster, running)
        assert top >= BEHIND_BLOCKS and cluster.nodes["VN"].app.height == 0
        await cluster.start(["VN"])
        await cluster.wait_height(top, ["VN"], timeout_s=30)
        later = cluster.nodes["CN"].app.height + 3  # heartbeats made while VN synced
        await cluster.wait_height(later, timeout_s=30)
        assert cluster.block_hashes("VN")[:later] == cluster.block_hashes("CN")[:later]
        # Most blocks came by sync; the last few it may have decided with the others.
        assert cluster.nodes["VN"].driver.stats.synced_blocks >= BEHIND_BLOCKS // 2

        # Caught up, VN is a validator again: with FR stopped, no quorum forms
        # without it, so the next block proves VN votes.
        await cluster.stop(["FR"])
        running = ["CN", "TH", "VN"]
        decided = await _commit_one(cluster, running)
        certificate = cluster.nodes["CN"].store.get_certificate(decided)
        assert certificate is not None
        vn_key = cluster.member("VN").node.public_hex
        assert vn_key in {s.validator for s in certificate.signatures}
    finally:
        await cluster.stop([s for s in cluster.nodes if s != "FR"])
