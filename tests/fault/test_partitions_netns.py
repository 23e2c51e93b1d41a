"""Partitions cut in real network namespaces: isolate one node, split 2/2, heal.

Nodes are hosts 10.77.0.1-4 in namespaces this test creates (see
tests/fault/netns.py); links are cut by downing switch ports. Safety: nothing
commits without a quorum, nobody diverges; liveness: the connected quorum
commits, and after healing everyone catches up.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fault import netns
from tests.fault.checks import check_stores
from tests.fault.harness import EnvelopeMaker

pytestmark = pytest.mark.slow

WHY_NOT = netns.unavailable()


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.mark.skipif(WHY_NOT is not None, reason=f"skipped: {WHY_NOT}")
def test_isolate_one_then_split_two_two_then_heal(tmp_path: Path) -> None:
    net = netns.NetnsNet(tmp_path / "net")
    maker = EnvelopeMaker(net.root, net.states, seed=7)
    a, b, c, d = net.states
    acked: list[str] = []
    net.build()
    try:
        net.start()
        first = net.submit(a, maker.envelope(a))
        assert all(net.status_of(s, first, wait_s=20) == "committed" for s in net.states)
        acked.append(first)

        # Isolate d: the other three (a quorum) commit; d stays where it was.
        net.isolate(3)
        d_height = net.height(d)
        during = [net.submit(a, maker.envelope(a)) for _ in range(3)]
        assert all(net.status_of(b, r, wait_s=20) == "committed" for r in during)
        acked += during
        assert net.height(d) == d_height
        net.heal()
        top = net.height(a)
        _wait(lambda: net.height(d) >= top, 40, f"{d} to catch up to {top}")

        # Split {a, b} / {c, d}: no side has a quorum, so no height moves.
        net.split()
        time.sleep(1)
        frozen = {s: net.height(s) for s in net.states}
        stalled = net.submit(a, maker.envelope(a))
        also = net.submit(c, maker.envelope(c))
        time.sleep(4)
        assert {s: net.height(s) for s in net.states} == frozen
        assert net.status_of(a, stalled) == "pending"

        # Heal: both sides' records commit everywhere.
        net.heal()
        for record_id in (stalled, also):
            for state in net.states:
                assert net.status_of(state, record_id, wait_s=40) == "committed"
        acked += [stalled, also]
        top = max(net.height(s) for s in net.states)
        _wait(lambda: min(net.height(s) for s in net.states) >= top, 30, "convergence")
    finally:
        net.stop()
        net.destroy()

    verdict = check_stores(net.root, net.states, acked)
    assert verdict.problems(set()) == []
    assert len(set(verdict.heights.values())) == 1
