"""Command line for the consensus simulator: replay one seed, run a campaign, or a scale run.

    python -m tests.simulation.campaign --seed 1217            # replay exactly, print the plan
    python -m tests.simulation.campaign --seeds 100000 --workers 2
    python -m tests.simulation.campaign --scale 190 --heights 3

A campaign runs seeds ``start .. start+seeds-1`` (each seed fixes n, the
faults and the whole execution), in ``--workers`` processes, and prints a
table: scenarios per n, faults injected by kind, commits, violations (with
their seeds and replay commands) and wall time. The exit status is 1 if any
scenario violated an invariant.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from consensus.engine import Replica
from tests.simulation.broken import BROKEN
from tests.simulation.runner import Result, Sim
from tests.simulation.schedule import DELTA_MS, Plan, make_plan

FAULT_KEYS = (
    "drop_loss",
    "drop_partition",
    "duplicate",
    "partitions",
    "crashes",
    "crash_mid_send",
    "restarts",
    "byz_silent",
    "byz_equivocate",
    "byz_double_vote",
    "byz_random_votes",
    "byz_twins",
)
OTHER_KEYS = (
    "delivered",
    "commits",
    "byzantine_commits",
    "evidence",
    "sync_requests",
    "sync_adopted",
)
CHUNK = 250


@dataclass
class Summary:
    scenarios: int = 0
    by_n: Counter[int] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[int, str]] = field(default_factory=list)
    live_ms: list[int] = field(default_factory=list)

    def add(self, r: Result) -> None:
        self.scenarios += 1
        self.by_n[r.plan.n] += 1
        self.stats.update(r.stats)
        if r.violation is not None:
            self.failures.append((r.plan.seed, r.violation))
        elif r.gst_to_live_ms is not None:
            self.live_ms.append(r.gst_to_live_ms)

    def merge(self, other: Summary) -> None:
        self.scenarios += other.scenarios
        self.by_n.update(other.by_n)
        self.stats.update(other.stats)
        self.failures += other.failures
        self.live_ms += other.live_ms


def run_chunk(job: tuple[range, str | None]) -> Summary:
    seeds, broken = job
    factory = BROKEN[broken] if broken else Replica
    summary = Summary()
    for seed in seeds:
        summary.add(Sim(make_plan(seed), factory).run())
    return summary


def campaign(start: int, count: int, workers: int, broken: str | None = None) -> Summary:
    chunks = [
        (range(s, min(s + CHUNK, start + count)), broken)
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


def report(summary: Summary, wall_s: float) -> str:
    live = sorted(summary.live_ms)
    rows = [
        ("scenarios", str(summary.scenarios)),
        ("scenarios by n", ", ".join(f"n={n}: {c}" for n, c in sorted(summary.by_n.items()))),
    ]
    rows += [(f"fault: {k}", str(summary.stats[k])) for k in FAULT_KEYS]
    rows += [(k, str(summary.stats[k])) for k in OTHER_KEYS]
    if live:
        rows.append(
            (
                "GST -> all honest past GST height (ms) p50/p99/max",
                f"{live[len(live) // 2]}/{live[int(len(live) * 0.99)]}/{live[-1]}",
            )
        )
    rows += [("violations", str(len(summary.failures))), ("wall time (s)", f"{wall_s:.1f}")]
    width = max(len(k) for k, _ in rows)
    lines = [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    for seed, violation in sorted(summary.failures)[:20]:
        lines.append(f"FAIL seed={seed}: {violation}\n  replay: scripts/simulate --seed {seed}")
    return "\n".join(lines)


def replay(seed: int, n: int | None) -> int:
    plan = make_plan(seed, n)
    started = time.perf_counter()
    result = Sim(plan).run()
    print(plan.describe())
    print(f"result: {'OK' if result.ok else 'VIOLATION ' + str(result.violation)}")
    print(
        f"honest heights >= {result.heights}, virtual {result.virtual_ms} ms, "
        f"wall {time.perf_counter() - started:.2f} s"
    )
    print(", ".join(f"{k}={v}" for k, v in sorted(result.stats.items())))
    return 0 if result.ok else 1


def scale_plan(n: int, heights: int, faults: bool, seed: int) -> Plan:
    """Constant 10 ms links so latency in ms / 10 is latency in message delays."""
    if not faults:
        return Plan(
            seed,
            n,
            delay_kind="constant",
            delay_ms=(10, 10),
            min_heights=heights,
            rebroadcast_ms=5000,
        )
    silent = {i: "silent" for i in range(0, n, 10)}  # every 10th validator is silent
    return Plan(
        seed,
        n,
        byzantine=silent,
        loss=0.05,
        delay_kind="constant",
        delay_ms=(10, 10),
        gst_ms=500,
        min_heights=heights,
        rebroadcast_ms=5000,
    )


def scale(n: int, heights: int, faults: bool) -> int:
    started = time.perf_counter()
    plan = scale_plan(n, heights, faults, seed=n)
    result = Sim(plan).run()
    wall_s = time.perf_counter() - started
    committed = max(result.heights, 1)
    delays = statistics.mean(result.latency_ms) / plan.delay_ms[0] if result.latency_ms else 0.0
    print(
        f"| {n} | {'10% silent, 5% loss until 500 ms' if faults else 'none'} "
        f"| {result.heights} | {result.stats['delivered'] / committed:.0f} "
        f"| {delays:.1f} | {wall_s:.1f} | {'OK' if result.ok else result.violation} |"
    )
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simulate", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed", type=int, help="replay one seed exactly")
    mode.add_argument("--seeds", type=int, help="run a campaign of this many seeds")
    mode.add_argument("--scale", type=int, metavar="N", help="one large run with N validators")
    parser.add_argument("--start", type=int, default=0, help="first seed of a campaign")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--n", type=int, default=None, help="force n for --seed")
    parser.add_argument("--heights", type=int, default=3, help="heights for --scale")
    parser.add_argument("--faults", action="store_true", help="faults for --scale")
    parser.add_argument(
        "--broken",
        choices=sorted(BROKEN),
        default=None,
        help="negative control: run a deliberately broken engine",
    )
    args = parser.parse_args(argv)
    if args.seed is not None:
        return replay(args.seed, args.n)
    if args.scale is not None:
        print(
            "| n | faults | heights | messages delivered per block "
            "| commit latency (message delays) | wall s | result |"
        )
        return scale(args.scale, args.heights, args.faults)
    started = time.perf_counter()
    summary = campaign(args.start, args.seeds, args.workers, args.broken)
    print(
        f"campaign: seeds {args.start}..{args.start + args.seeds - 1}, "
        f"workers {args.workers}, DELTA_MS {DELTA_MS}"
        f"{', BROKEN engine ' + args.broken if args.broken else ''}"
    )
    print(report(summary, time.perf_counter() - started))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
