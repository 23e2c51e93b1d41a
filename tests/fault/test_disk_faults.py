"""Damaged disks: a node restarted on a corrupt WAL or a torn/corrupted LevelDB file.

Each damaged node must either refuse to start with a clear one-line reason
(``node XX cannot start: ...``, no traceback) or recover and catch up from
its peers; in no case may it serve a block that differs from its peers'.
4 real node processes on 127.0.0.1 under a light load.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from node.driver import WAL_NAME
from tests.fault.checks import check_stores
from tests.fault.harness import FaultNet, Load

pytestmark = pytest.mark.slow


def _flip_bytes(folder: Path, rng: random.Random) -> str:
    """Overwrite 16 bytes in the second half of the newest .log (a bad last write)."""
    logs = [p for p in folder.iterdir() if p.suffix == ".log" and p.stat().st_size > 64]
    newest = max(logs, key=lambda p: p.stat().st_mtime_ns)
    size = newest.stat().st_size
    offset = rng.randrange(size // 2, size - 16)
    with newest.open("r+b") as file:
        file.seek(offset)
        file.write(os.urandom(16))
    return f"{newest.name}@{offset}"


def _truncate_table(folder: Path, rng: random.Random) -> str:
    """Cut the newest table file (else the MANIFEST) to less than half its size."""
    tables = [p for p in folder.iterdir() if p.suffix == ".ldb" and p.stat().st_size > 64]
    if not tables:  # nothing flushed yet: tear the MANIFEST (the table index) instead
        tables = [p for p in folder.iterdir() if p.name.startswith("MANIFEST-")]
    newest = max(tables, key=lambda p: p.stat().st_mtime_ns)
    keep = rng.randrange(0, newest.stat().st_size // 2)
    os.truncate(newest, keep)
    return f"{newest.name} -> {keep}"


def _same_as_peers(net: FaultNet, state: str, peer: str) -> None:
    top = net.height(state)
    for height in {1, max(1, top // 2), top}:
        mine = httpx.get(f"{net.urls[state]}/v1/blocks/{height}", timeout=5).json()["hash"]
        theirs = httpx.get(f"{net.urls[peer]}/v1/blocks/{height}", timeout=5).json()["hash"]
        assert mine == theirs, f"{state} serves a different block {height}"


def test_damaged_disks_recover_or_refuse_never_serve_a_wrong_chain(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("COMITY_FAULT_SEED", "5")))
    net = FaultNet(tmp_path / "net")
    load = Load(net, seed=5, batch=5, interval_s=0.2)
    outcomes: dict[str, str] = {}
    net.start()
    load.start()
    try:
        net.wait_height(net.states, 3, timeout_s=40)
        damage: dict[str, tuple[str, Callable[[], bytes | str | None]]] = {
            "FR": ("wal", lambda: net.corrupt_wal("FR", rng)),
            "TH": ("log bytes", lambda: _flip_bytes(net.ledger_dir("TH"), rng)),
            "VN": ("table", lambda: _truncate_table(net.ledger_dir("VN"), rng)),
            "CN": ("log tail", lambda: net.truncate_newest_log("CN", rng)),
        }
        for victim, (kind, harm) in damage.items():
            time.sleep(1)
            net.kill(victim)
            harmed = harm()  # the WAL damage returns the old value, the others a note
            ok, _ = net.try_start(victim)
            tail = net.log(victim)[-3000:]
            if kind == "wal":
                assert not ok, "a corrupt consensus WAL must stop the node"
            if not ok:
                assert f"node {victim} cannot start:" in tail and "Traceback" not in tail, tail
                outcomes[victim] = f"{kind}: refused"
                if kind == "wal":
                    assert not isinstance(harmed, str)
                    net.restore_wal(victim, harmed)  # the operator restores it from backup
                else:
                    net.wipe(victim)  # the operator wipes it and resyncs
                ok, why = net.try_start(victim)
                assert ok, why
            else:
                outcomes[victim] = f"{kind}: recovered ({harmed!r:.60})"
            top = max(net.height(s) for s in net.states if s != victim)
            net.wait_height([victim], top, timeout_s=60)
            _same_as_peers(net, victim, "FR" if victim != "FR" else "CN")
        load.stop()
        load.sweep(20)
        top = max(net.height(s) for s in net.states)
        net.wait_height(net.states, top, timeout_s=40)
    finally:
        load.stopping.set()
        net.stop_all()
    print("disk faults:", outcomes)
    verdict = check_stores(net.root, net.states, load.stats.acked)
    assert verdict.problems(allowed_faulty={"TH", "VN", "CN"}) == []
    assert len(load.stats.acked) > 20 and not verdict.lost
    assert outcomes["FR"] == "wal: refused"
    assert f"consensus WAL (state key {WAL_NAME!r}) in the store is corrupt" in net.log("FR")
