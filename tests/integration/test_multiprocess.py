"""Real node processes on loopback: commit, crash (kill -9), quorum loss, restart, resync.

One scenario walks through the whole life of a 4-state consortium, since
starting processes costs seconds; each phase asserts its own outcome.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from ledger.store import Store
from tests.procnet import ProcNet

pytestmark = pytest.mark.slow


def _committed_ids(store: Store) -> list[str]:
    return [rid for h in range(1, store.height + 1) for rid in store.get_block_record_ids(h)]


def test_consortium_survives_crashes_quorum_loss_and_wipe(tmp_path: Path) -> None:
    net = ProcNet(tmp_path / "net")
    acknowledged: list[str] = []
    net.start()
    try:
        # 1. Records submitted to different nodes commit on all four.
        ids = [net.submit(state) for state in net.states for _ in range(2)]
        for state in net.states:
            for record_id in ids:
                net.wait_committed(state, record_id)
        acknowledged += ids

        # 2. kill -9 one node: the other three keep committing.
        net.kill("VN")
        more = [net.submit(s) for s in ("CN", "FR", "TH")]
        for record_id in more:
            net.wait_committed("CN", record_id)
        acknowledged += more

        # 3. Restart it: it catches up.
        net.start("VN")
        net.wait_height(["VN"], net.height("CN"), timeout_s=30)

        # 4. kill -9 two of four: no quorum, so nothing commits, and nobody diverges.
        net.kill("TH")
        net.kill("VN")
        stalled = net.submit("CN")
        height_before = net.height("CN")
        time.sleep(3)
        assert net.height("CN") == height_before
        assert net.height("FR") == height_before

        # 5. Restart both: the pending record commits.
        net.start("TH", "VN")
        net.wait_committed("CN", stalled, timeout_s=40)
        acknowledged.append(stalled)
        top = net.height("CN")
        net.wait_height(net.states, top, timeout_s=30)

        # 6. A wiped node rejoins by block sync.
        net.kill("FR", signal.SIGTERM)
        net.wipe("FR")
        started = time.monotonic()
        net.start("FR")
        net.wait_height(["FR"], top, timeout_s=60)
        print(f"wiped node synced {top} blocks in {time.monotonic() - started:.2f} s")
    finally:
        net.stop_all()

    # 7. Every store holds the same blocks, and every acknowledged record exactly once.
    chains = {}
    for state in net.states:
        with Store.open_leveldb(tmp_path / "net" / state / "data" / "ledger") as store:
            height = store.height
            chains[state] = [
                store.get_header(h).hash()  # type: ignore[union-attr]
                for h in range(1, height + 1)
            ]
            committed = _committed_ids(store)
            assert len(committed) == len(set(committed))
            assert set(acknowledged) <= set(committed), state
    shortest = min(len(c) for c in chains.values())
    assert shortest >= top
    assert len({tuple(c[:shortest]) for c in chains.values()}) == 1
