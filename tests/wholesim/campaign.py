"""Command line for the whole-node simulator: replay one seed, or run a campaign.

    python -m tests.wholesim.campaign --seed 42             # replay exactly, print the plan
    python -m tests.wholesim.campaign --seeds 1000 --workers 2
    python -m tests.wholesim.campaign --seeds 200 --behaviours junk_blocks
    python -m tests.wholesim.campaign --seeds 50 --n 10      # every seed with ten nodes
    python -m tests.wholesim.campaign --seeds 300 --broken forgets-lock   # a broken engine

A campaign runs seeds ``start .. start+seeds-1`` in ``--workers`` processes
and prints a table: scenarios per n, faults injected, violations by
invariant and by Byzantine behaviour, wall time per scenario, then each
failing seed with its one-line replay command. Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import node.driver
from tests.wholesim.broken import BROKEN
from tests.wholesim.byzantine import BEHAVIOURS
from tests.wholesim.invariants import BODY_FAULTS, INVARIANTS
from tests.wholesim.plan import N_MAX, NS
from tests.wholesim.scenario import Result, run_seed

CHUNK = 25
FAULT_KEYS = (
    "drop_loss",
    "drop_partition",
    "duplicate",
    "split_late_proposal",
    "split_late_vote",
    "crashes",
    "restarts",
    "restores",
    "governance_joined",
    "governance_removed",
    "byz_second_proposals",
    "byz_conflicting_envelopes",
    "byz_duplicate_record_blocks",
    "byz_junk_batches",
    "byz_lies",
    "byz_withheld_replies",
    "byz_replays",
    "byz_flood_items",
    "byz_gossip_records",
    "private_acts_submitted",
    "byz_private_acts",
    "byz_bad_bodies",
    "byz_bodies_to_non_parties",
    "byz_body_requests",
    "byz_fake_bodies",
    "byz_snooped_bodies",
    *(f"counted: {reason}" for reason in BODY_FAULTS),
)


@dataclass
class Summary:
    scenarios: int = 0
    by_n: Counter[int] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    by_invariant: Counter[str] = field(default_factory=Counter)
    by_behaviour: Counter[str] = field(default_factory=Counter)
    violations_by_behaviour: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    wall_s: float = 0.0

    def add(self, r: Result) -> None:
        self.scenarios += 1
        self.by_n[r.plan.n] += 1
        self.stats.update(r.stats)
        self.wall_s += r.wall_s
        kinds = set(r.plan.behaviours) or {"none"}
        self.by_behaviour.update(kinds)
        if r.violation is not None:
            self.by_invariant[r.violation[0]] += 1
            self.violations_by_behaviour.update(kinds)
            self.failures.append((r.plan.seed, r.violation[0], r.violation[1]))

    def merge(self, other: Summary) -> None:
        self.scenarios += other.scenarios
        self.by_n.update(other.by_n)
        for mine, theirs in (
            (self.stats, other.stats),
            (self.by_invariant, other.by_invariant),
            (self.by_behaviour, other.by_behaviour),
            (self.violations_by_behaviour, other.violations_by_behaviour),
        ):
            mine.update(theirs)
        self.failures += other.failures
        self.wall_s += other.wall_s


def run_chunk(job: tuple[range, tuple[str, ...] | None, int | None]) -> Summary:
    seeds, behaviours, n = job
    summary = Summary()
    for seed in seeds:
        summary.add(run_seed(seed, behaviours=behaviours, n=n))
    return summary


def campaign(
    start: int,
    count: int,
    workers: int,
    behaviours: tuple[str, ...] | None = None,
    n: int | None = None,
) -> Summary:
    chunks = [
        (range(s, min(s + CHUNK, start + count)), behaviours, n)
        for s in range(start, start + count, CHUNK)
    ]
    total = Summary()
    if workers <= 1:
        for chunk in chunks:
            total.merge(run_chunk(chunk))
        return total
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for part in pool.imap_unordered(run_chunk, chunks):
            total.merge(part)
    return total


def report(
    summary: Summary,
    wall_s: float,
    behaviours: tuple[str, ...] | None = None,
    n: int | None = None,
) -> str:
    per = summary.wall_s / max(summary.scenarios, 1)
    rows = [
        ("scenarios", str(summary.scenarios)),
        ("scenarios by n", ", ".join(f"n={n}: {c}" for n, c in sorted(summary.by_n.items()))),
        ("commits (sum over honest nodes)", str(summary.stats["commits"])),
        ("cost per scenario (s, one core)", f"{per:.3f}"),
    ]
    rows += [(f"fault: {k}", str(summary.stats[k])) for k in FAULT_KEYS]
    rows += [(f"violations: {k}", str(summary.by_invariant[k])) for k in INVARIANTS]
    for kind in ["none", *sorted(BEHAVIOURS)]:
        if summary.by_behaviour[kind]:
            rows.append(
                (
                    f"behaviour {kind}: scenarios / violated",
                    f"{summary.by_behaviour[kind]} / {summary.violations_by_behaviour[kind]}",
                )
            )
    rows += [("violations", str(len(summary.failures))), ("wall time (s)", f"{wall_s:.1f}")]
    width = max(len(k) for k, _ in rows)
    lines = [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    only = f" --behaviours {','.join(behaviours)}" if behaviours else ""
    only += f" --n {n}" if n is not None else ""
    for seed, kind, detail in sorted(summary.failures)[:20]:
        lines.append(
            f"FAIL seed={seed} {kind}: {detail}\n"
            f"  replay: scripts/simulate --whole --seed {seed}{only}"
        )
    return "\n".join(lines)


def replay(seed: int, behaviours: tuple[str, ...] | None, n: int | None = None) -> int:
    result = run_seed(seed, behaviours=behaviours, n=n)
    print(result.plan.describe())
    verdict = "OK" if result.ok else f"VIOLATION {result.violation}"
    print(f"result: {verdict}")
    print(
        f"honest heights >= {result.heights}, virtual {result.virtual_s:.2f} s, "
        f"wall {result.wall_s:.2f} s"
    )
    print(", ".join(f"{k}={v}" for k, v in sorted(result.stats.items())))
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulate --whole", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed", type=int, help="replay one seed exactly")
    mode.add_argument("--seeds", type=int, help="run a campaign of this many seeds")
    parser.add_argument("--start", type=int, default=0, help="first seed of a campaign")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--n", type=int, default=None, help=f"nodes in every seed (default: drawn from {NS})"
    )
    parser.add_argument(
        "--behaviours",
        default=None,
        help=f"comma-separated Byzantine kinds to draw from: {sorted(BEHAVIOURS)}",
    )
    parser.add_argument(
        "--broken",
        choices=sorted(BROKEN),
        default=None,
        help="run every node with this broken engine (tests/wholesim/broken.py)",
    )
    args = parser.parse_args(argv)
    if args.broken is not None:  # before the workers fork: they inherit it
        node.driver.Replica = BROKEN[args.broken]  # type: ignore[attr-defined]
    behaviours = tuple(args.behaviours.split(",")) if args.behaviours else None
    unknown = set(behaviours or ()) - set(BEHAVIOURS)
    if unknown:
        parser.error(f"unknown behaviours {sorted(unknown)}")
    if args.n is not None and not 4 <= args.n <= N_MAX:
        parser.error(f"--n must be 4..{N_MAX}")
    if args.seed is not None:
        return replay(args.seed, behaviours, args.n)
    started = time.perf_counter()
    summary = campaign(args.start, args.seeds, args.workers, behaviours, args.n)
    print(
        f"whole-node campaign: seeds {args.start}..{args.start + args.seeds - 1}, "
        f"workers {args.workers}"
    )
    print(report(summary, time.perf_counter() - started, behaviours, args.n))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
