"""The end-of-run checks must catch what they look for: a lost record, a conflicting
vote, a diverged chain. Stores come from in-process clusters (no sockets)."""

from __future__ import annotations

import json
from pathlib import Path

from consensus.messages import Vote
from consensus.state import PersistedState, Step
from ledger.block import vote_sign_bytes
from ledger.canonical import canonical_bytes
from ledger.store import Store
from node.driver import WAL_NAME
from tests.cluster import Cluster
from tests.fault.checks import check_stores


async def _run(root: Path, records: int) -> tuple[Cluster, list[str]]:
    cluster = Cluster(4, data_root=root)
    (root / "genesis.json").write_text(json.dumps(cluster.genesis.to_json()))
    await cluster.start()
    try:
        ids = []
        for i in range(records):
            state = cluster.states[i % 4]
            reply = await cluster.api[state].post("/v1/records", json=cluster.envelope(state))
            ids.append(reply.json()["id"])
        for record_id in ids:
            reply = await cluster.api["FR"].get(f"/v1/records/{record_id}", params={"wait": 15})
            assert reply.json()["status"] == "committed"
        await cluster.wait_height(max(n.app.height for n in cluster.nodes.values()))
    finally:
        await cluster.stop()
    return cluster, ids


def _ledger(root: Path):  # type: ignore[no-untyped-def]
    return lambda state: root / state / "ledger"


async def test_checks_pass_clean_stores_and_catch_each_fault(tmp_path: Path) -> None:
    cluster, ids = await _run(tmp_path / "a", 6)
    states = cluster.states
    clean = check_stores(tmp_path / "a", states, ids, ledger_of=_ledger(tmp_path / "a"))
    assert clean.problems(set()) == [] and clean.committed_on_chain == 6

    # A record a client was told is committed, but that no node holds: lost.
    lost = check_stores(
        tmp_path / "a", states, [*ids, "ab" * 32], ledger_of=_ledger(tmp_path / "a")
    )
    assert len(lost.lost) == 4 and len(lost.problems(set())) == 4

    # CN's WAL holds a precommit at height 1 for another block than its certificate's.
    with Store.open_leveldb(tmp_path / "a" / "CN" / "ledger") as store:
        cert = store.get_certificate(1)
        assert cert is not None
        other = "cd" * 32
        key = cluster.member("CN").node
        vote = Vote(
            "precommit",
            1,
            cert.round,
            other,
            key.public_hex,
            key.sign(vote_sign_bytes("precommit", cluster.chain_id, 1, cert.round, other)).hex(),
        )
        wal = PersistedState(1, cert.round, Step.PRECOMMIT, None, -1, None, -1, (vote,), ())
        store.put_state(WAL_NAME, canonical_bytes(wal.to_json()))
    equivocated = check_stores(tmp_path / "a", states, ids, ledger_of=_ledger(tmp_path / "a"))
    assert len(equivocated.conflicting_votes) == 1
    assert "CN signed 2 different precommits at height 1" in equivocated.conflicting_votes[0]

    # VN's store replaced by another consortium's chain: divergence at every height.
    await _run(tmp_path / "b", 2)
    mixed = check_stores(
        tmp_path / "a",
        states,
        ids,
        ledger_of=lambda s: tmp_path / ("b" if s == "VN" else "a") / s / "ledger",
    )
    assert mixed.divergences and mixed.bad_certificates and mixed.lost
