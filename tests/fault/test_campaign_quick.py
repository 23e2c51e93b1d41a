"""The fault campaign in its quick, bounded form: each fault class once, then the checks.

4 real node processes on 127.0.0.1 under load; see tests/fault/campaign.py for
the fault classes and checks, and ``scripts/chaos`` for the long campaign.
``COMITY_FAULT_SEED`` replays another schedule.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fault.campaign import CLASSES, Campaign

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("COMITY_FAULT_SEED", "20261122"))


HONEST_CLASSES = tuple(c for c in CLASSES if c != "byzantine")


def test_every_fault_class_once_loses_nothing_and_never_diverges(tmp_path: Path) -> None:
    campaign = Campaign(tmp_path / "net", SEED, hold_s=(2.0, 3.5), gap_s=(0.3, 1.0))
    summary = campaign.run(150, at_least_once=True, faults_max=len(HONEST_CLASSES))
    print(summary.line())
    assert summary.problems == [], f"seed {SEED}: {summary.problems}"
    assert {c: summary.faults[c] for c in HONEST_CLASSES} == dict.fromkeys(HONEST_CLASSES, 1)
    assert summary.verdict is not None
    assert summary.committed > 50, "the load client saw too few commits"
    assert summary.verdict.lost == [] and summary.verdict.divergences == []
    assert any("corrupt WAL refused" in r for r in summary.refusals), summary.refusals
    assert 1 <= summary.link_connections_max <= 4, (
        "a node opened more than 4 connections "
        "to one peer (httpx.Limits(max_connections=4) in node/peers.py)"
    )
    heights = set(summary.verdict.heights.values())
    assert len(heights) == 1 and heights.pop() > 10


def test_with_a_byzantine_member_every_fault_class_once(tmp_path: Path) -> None:
    """VN runs the real node binary under --byzantine, rotating behaviour groups at
    every restart; node faults strike only VN. The honest three must agree, lose
    nothing and keep committing (scripts/chaos --byzantine is the long form)."""
    campaign = Campaign(tmp_path / "net", SEED, hold_s=(2.0, 3.5), gap_s=(0.3, 1.0), byzantine=True)
    summary = campaign.run(150, at_least_once=True, faults_max=len(CLASSES))
    print(summary.line())
    assert summary.problems == [], f"seed {SEED}: {summary.problems}"
    assert {c: summary.faults[c] for c in CLASSES} == dict.fromkeys(CLASSES, 1)
    assert len(summary.behaviours) >= 4, summary.behaviours  # VN restarted with new groups
    assert summary.verdict is not None
    assert summary.committed > 50
    honest = {s: h for s, h in summary.verdict.heights.items() if s != "VN"}
    assert len(set(honest.values())) == 1 and min(honest.values()) > 10
