"""The whole-node simulator: production nodes, simulated sockets, disk and time.

A bounded campaign over fixed seeds must hold every invariant
(tests/wholesim/invariants.py); each Byzantine class has its own campaign and
a negative control showing the campaign catches the bug it targets. A failing
seed is replayed with ``scripts/simulate --whole --seed S``.
"""

from __future__ import annotations

import os
from collections import Counter

import httpx
import pytest

from ledger.private import commitment
from tests.wholesim.byzantine import BEHAVIOURS
from tests.wholesim.campaign import Summary, campaign, report
from tests.wholesim.invariants import (
    ASKED,
    BODY_FAULTS,
    BY_NON_PARTY,
    MISMATCH,
    TO_NON_PARTY,
    Checker,
    body_fault,
)
from tests.wholesim.plan import make_plan
from tests.wholesim.regressions import REINTRODUCE
from tests.wholesim.scenario import run_plan, run_seed

QUICK_SEEDS = range(200)
TEN_NODE_SEEDS = range(6)
PER_BEHAVIOUR_SEEDS = range(1000, 1012)
CONTROL_BUDGET = 16
KINDS = tuple(sorted(BEHAVIOURS))


def test_quick_campaign_holds_every_invariant() -> None:
    """Agreement, audit, no honest double-sign, liveness, bounded memory, no 5xx.

    The seeds run in forked workers, one per core (each seed is its own world,
    so the result is the same as a sequential run's)."""
    workers = max(1, min(2, os.cpu_count() or 1))
    summary = campaign(QUICK_SEEDS.start, len(QUICK_SEEDS), workers, KINDS)
    assert summary.scenarios == len(QUICK_SEEDS)
    assert summary.failures == [], report(summary, summary.wall_s, KINDS)
    assert summary.stats["commits"] >= 3 * 3 * len(QUICK_SEEDS)
    for fault in (
        "drop_loss",
        "drop_partition",
        "duplicate",
        "split_late_proposal",
        "crashes",
        "restarts",
        "governance_joined",
        "byz_second_proposals",
        "byz_replays",
        "byz_flood_items",
        "byz_gossip_records",
        "private_acts_submitted",
        "byz_bad_bodies",
        "byz_bodies_to_non_parties",
        "byz_body_requests",
    ):
        assert summary.stats[fault] > 0, f"fault {fault} never injected"


def test_ten_node_campaign_holds_every_invariant() -> None:
    """n = 10 (f = 3): the seeds' faults, Byzantine members of every class (mostly
    three colluding), crashes and governance, over ten real nodes."""
    summary = Summary()
    for seed in TEN_NODE_SEEDS:
        summary.add(run_seed(seed, n=10, behaviours=KINDS))
    assert summary.failures == [], report(summary, summary.wall_s, KINDS, 10)
    assert summary.by_n == {10: len(TEN_NODE_SEEDS)}
    assert summary.stats["commits"] >= 7 * len(TEN_NODE_SEEDS)  # every honest node, a height
    byzantine = sum(summary.stats[f"byz_{kind}"] for kind in KINDS)
    assert byzantine >= 2 * len(TEN_NODE_SEEDS), "too few Byzantine members drawn"


def test_fault_free_fifteen_nodes_commit_at_once() -> None:
    """The largest consortium the demo states allow (15, one spare): no faults, every
    node holds the record submitted at GST within 0.3 s of virtual time (delays
    up to 50 ms: its gossip, then a proposal, prevotes and precommits)."""
    result = run_seed(15, n=15, faults=False)
    assert result.ok, result.violation
    assert result.plan.n == 15 and result.heights >= 1
    assert result.stats["live_s_total_ms"] <= 300, result.stats["live_s_total_ms"]


#: What each privacy kind must have cost its senders at honest nodes over its campaign.
REFUSED = {
    "bad_body": (MISMATCH, TO_NON_PARTY),
    "body_snoop": (ASKED, BY_NON_PARTY),
}


@pytest.mark.parametrize("kind", KINDS)
def test_campaign_per_behaviour(kind: str) -> None:
    """Each Byzantine class alone (f of them colluding where n allows): no violation.
    A privacy kind's pushes and requests were refused and counted, each as its own
    peer fault, at honest nodes (the ``refused`` invariant bounds each count)."""
    counted: Counter[str] = Counter()
    for seed in PER_BEHAVIOUR_SEEDS:
        result = run_seed(seed, behaviours=(kind,))
        assert result.ok, (
            f"seed={seed} {result.violation}\n{result.plan.describe()}\n"
            f"  replay: scripts/simulate --whole --seed {seed} --behaviours {kind}"
        )
        counted.update({k: v for k, v in result.stats.items() if k.startswith("counted: ")})
    for reason in BODY_FAULTS:
        expected = reason in REFUSED.get(kind, ())
        assert (counted[f"counted: {reason}"] > 0) == expected, (kind, reason, counted)


@pytest.mark.parametrize("kind", sorted(REINTRODUCE))
def test_negative_control_campaign_finds_the_bug(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the finding's bug put back (tests/wholesim/regressions.py), the campaign of
    its Byzantine class finds a violation within the budget; without it, the same
    seeds hold (test_campaign_per_behaviour)."""
    finding, reintroduce = REINTRODUCE[kind]
    reintroduce(monkeypatch)
    for seed in range(CONTROL_BUDGET):
        plan = make_plan(seed, behaviours=(kind,))
        if not plan.byzantine:
            continue
        result = run_plan(plan)
        if result.violation is not None:
            assert result.violation[0] in ("liveness", "audit", "agreement", "memory")
            return
    pytest.fail(f"{finding}: no violation in {CONTROL_BUDGET} seeds of {kind}")


def test_replay_is_exact() -> None:
    """One seed fixes the whole run: same stats, same virtual time, same chain."""
    runs = [run_seed(5) for _ in range(2)]
    assert runs[0].stats == runs[1].stats and runs[0].virtual_s == runs[1].virtual_s
    assert runs[0].stats["delivered"] > 0


def test_checkers_fire() -> None:
    """The double-sign and agreement checkers catch what they are for."""
    checker = Checker({}, {"aa" * 32})
    vote = (
        b'{"items":[{"msg":{"kind":"vote","type":"prevote","height":3,"round":1,'
        b'"block_hash":%s,"validator":"' + b"aa" * 32 + b'","signature":"00"}}]}'
    )
    checker.tap("CN", vote % (b'"' + b"11" * 32 + b'"'))
    checker.tap("CN", vote % b"null")
    assert checker.first is not None and checker.first[0] == "double_sign"


class _Store:
    """What ``Bodies.stored`` reads of a store: one body and its note."""

    def __init__(self, note: str | None, body: dict[str, object] | None) -> None:
        self.note, self.body = note, body

    def body_note(self, record_id: str) -> dict[str, str] | None:
        return None if self.note is None else {"status": self.note}

    def get_body(self, record_id: str) -> dict[str, object] | None:
        return self.body


def test_body_checkers_fire() -> None:
    """privacy, integrity and refused catch what they are for (the controls show
    the campaigns reach them: tests/wholesim/controls.py)."""
    body = {"act": {"type": "preservation_request"}, "salt": "00" * 16}
    header = {"parties": ["CN", "TH"], "commitment": commitment(body)}
    other = {**body, "salt": "11" * 16}
    assert body_fault("FR", "CN", header, body) == TO_NON_PARTY
    assert body_fault("TH", "VN", header, body) == BY_NON_PARTY
    assert body_fault("TH", "CN", header, other) == MISMATCH
    assert body_fault("TH", "CN", header, body) is None
    for state, note, held, kind in (
        ("FR", "kept", body, "privacy"),
        ("FR", None, body, "privacy"),
        ("TH", "kept", other, "integrity"),
        ("TH", "kept", None, "integrity"),
    ):
        checker = Checker({}, set())
        checker.bodies.stored(state, _Store(note, held), "ab" * 32, header)  # type: ignore[arg-type]
        assert [v[0] for v in checker.violations] == [kind], (state, note)
    checker = Checker({}, set())
    checker.bodies.stored("TH", _Store("void", other), "ab" * 32, header)  # type: ignore[arg-type]
    checker.bodies.stored("TH", _Store("kept", body), "ab" * 32, header)  # type: ignore[arg-type]
    assert checker.violations == []


def test_failure_report_names_seed_and_replay_command() -> None:
    summary = Summary()
    summary.failures.append((77, "liveness", "heights stuck"))
    text = report(summary, 1.0, ("junk_blocks",))
    assert "FAIL seed=77 liveness" in text
    assert "scripts/simulate --whole --seed 77 --behaviours junk_blocks" in text


def test_a_peer_removed_by_governance_never_kills_block_sync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seed 100277 removes a member by vote while block sync still holds its link. The
    poll then hit a closed client: RuntimeError, and the sync task died (found by this
    campaign; node/peers.py PeerRemoved). With the check put back out, the campaign's
    task_died invariant must fire."""
    assert run_seed(100277).ok
    monkeypatch.setattr(httpx.AsyncClient, "is_closed", property(lambda self: False))
    result = run_seed(100277)
    assert result.violation is not None and result.violation[0] == "task_died", result.violation
