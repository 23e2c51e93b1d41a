"""Seeded simulation of the Tendermint engine (docs/CONSENSUS.md; arXiv:1807.04938 Algorithm 1).

Invariants (checked as events happen, see runner.py): agreement, validity,
certificate validity, no honest double-sign across crash/restart
("Persist before send"), and liveness after GST with <= f faulty validators.
A failing seed is replayed with ``scripts/simulate --seed S``.
"""

from __future__ import annotations

from collections import Counter

import pytest

from consensus.messages import PREVOTE, Vote
from tests.simulation.broken import ForgetsLock
from tests.simulation.campaign import FAULT_KEYS, Summary, report, scale_plan
from tests.simulation.runner import Sim, Violation
from tests.simulation.schedule import NS, Crash, Plan, make_plan

SEEDS_PER_N = 1000  # 4 x 1,000 = 4,000 scenarios per CI run (~1 min on 2 cores)
NEGATIVE_CONTROL_BUDGET = 1000


@pytest.mark.parametrize("n", NS)
def test_seeded_scenarios_hold_every_invariant(n: int) -> None:
    """Agreement, validity, certificates, no double-sign, liveness after GST, for n in NS."""
    summary = Summary()
    for seed in range(SEEDS_PER_N):
        summary.add(Sim(make_plan(seed, n)).run())
    assert summary.failures == [], report(summary, 0.0)
    assert summary.scenarios == SEEDS_PER_N
    assert summary.stats["commits"] >= 3 * (n - n // 3) * SEEDS_PER_N  # >= 3 heights each
    missing = [k for k in FAULT_KEYS if summary.stats[k] == 0]
    assert not missing, f"faults never injected for n={n}: {missing}"


def test_replay_is_exact() -> None:
    """Determinism: one seed fixes the whole execution (--seed S replays it)."""
    runs = [Sim(make_plan(1234)).run() for _ in range(2)]
    assert runs[0].stats == runs[1].stats
    assert (runs[0].virtual_ms, runs[0].latency_ms) == (runs[1].virtual_ms, runs[1].latency_ms)
    assert runs[0].stats["delivered"] > 0


def test_negative_control_lock_is_needed_for_agreement() -> None:
    """R-lock (line 36-43): without lockedValue/validValue the campaign finds two commits at one height."""
    for seed in range(NEGATIVE_CONTROL_BUDGET):
        result = Sim(make_plan(seed), ForgetsLock).run()
        if result.violation is not None and result.violation.startswith("agreement"):
            assert f"seed={seed}" in result.plan.describe()
            return
    pytest.fail(f"no agreement violation in {NEGATIVE_CONTROL_BUDGET} seeds with ForgetsLock")


def test_failure_report_names_seed_and_replay_command() -> None:
    """A failure prints the seed and fault schedule, and how to replay it."""
    summary = Summary()
    summary.failures.append((77, "agreement: height 1"))
    text = report(summary, 1.0)
    assert "FAIL seed=77" in text and "scripts/simulate --seed 77" in text
    assert "crash node 1" in Plan(5, 4, crashes=(Crash(1, 10, 200, True),)).describe()


def test_double_sign_checker_fires() -> None:
    """Persist before send: the checker itself must catch two votes of one honest key in one slot."""
    sim = Sim(make_plan(3, 4, faults=False))
    node = sim.honest[0]
    me = node.signer.public_hex
    a = Vote(PREVOTE, 1, 0, "a" * 64, me, "0" * 64)
    sim.check_signed(node, (a,))
    with pytest.raises(Violation, match="double_sign"):
        sim.check_signed(node, (Vote(PREVOTE, 1, 0, None, me, "0" * 64),))


def test_crash_mid_send_and_restart_never_double_sign() -> None:
    """Persist before send / restart: crashes between persist and send keep every invariant."""
    stats: Counter[str] = Counter()
    for seed in range(60):
        crashes = tuple(Crash(i % 4, 50 + 37 * i, 260 + 41 * i, i % 2 == 0) for i in range(4))
        plan = Plan(seed, 4, loss=0.1, crashes=crashes, gst_ms=800, block_interval_ms=100)
        result = Sim(plan).run()
        assert result.ok, f"seed {seed}: {result.violation}\n{plan.describe()}"
        stats.update(result.stats)
    assert stats["crash_mid_send"] > 0 and stats["restarts"] > 0


@pytest.mark.parametrize("n", [31])
def test_scale_smoke_three_message_delays(n: int) -> None:
    """Algorithm 1 fault-free: a height commits in 3 message delays (proposal, prevote, precommit)."""
    plan = scale_plan(n, 2, faults=False, seed=n)
    result = Sim(plan).run()
    assert result.ok and result.heights >= 2
    assert sum(result.latency_ms) / len(result.latency_ms) == 3 * plan.delay_ms[0]
