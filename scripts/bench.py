#!/usr/bin/env python3
"""End-to-end benchmark of a Comity consortium of real node processes on 127.0.0.1.

Scenarios (``--scenario NAME`` or ``all``):

    n4-single  4 nodes, single-record POSTs from wrk, 16 connections per node
    n4-batch   4 nodes, batch POSTs (--batch envelopes each) from wrk
    n4-half    4 nodes at half of n4-batch's committed rate (or --rate), from
               open-loop Python senders: latency below saturation
    n7-batch   7 nodes, batch POSTs
    wan4, wan7 4 or 7 nodes whose every P2P link (both ways) is delayed by
               --wan-delay-ms plus up to --wan-jitter-ms (a userspace relay per
               directed link), at --wan-rate records/s: latency across continents
    catchup    a wiped node syncing --catchup-records pre-built records
    reads      GET record / proof / search over --read-records pre-built records
    reads-observers  GET record, 12 client threads: 1 validator alone, then 3
               observer nodes (--catchup-records pre-built records)

``--visibility parties`` files the load scenarios' acts as private acts
(docs/PRIVACY.md: a ``private_act`` header on the chain, the body only at the
actor's and the territorial state's nodes), each state's load at its own node;
the default ``consortium`` files the same acts in clear, as before. catchup and
reads pre-build clear chains, so they run only with ``consortium``.

Nodes run with fsync on and the default config and consensus parameters.
Records are signed before anything is measured (process pool). Load comes
from separate processes (wrk, Python senders) and a latency probe process.
Each load scenario reports committed records/s over a steady window after
warm-up (from the nodes' ledger_size), submit->commit latency percentiles,
CPU% and peak RSS per node, blocks/s, mean block size, and the signature
bound cores x Ed25519 verifies/s per core / N with the fraction reached.
After each saturating one (n4-single, n4-batch, n7-batch), an etcd cluster of
as many members, fsync on, takes the same load from wrk (benchlib/anchor.py),
and the report prints Comity's committed rate over etcd's: the anchor of the
same run, on the same machine.

The machine's other work skews every figure: run the full campaign on a
quiet machine. ``--quick`` (tiny sizes, 5 s windows) checks the harness.

Usage: scripts/bench [--scenario all] [--visibility consortium] [--duration 35] [--json]
                     [--quick] ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ledger, node

from benchlib import anchor, report
from benchlib.load import LoadPlan, run_load
from benchlib.measure import cores
from benchlib.observers import run_observer_reads
from benchlib.offline import run_catchup, run_reads
from benchlib.options import Options
from benchlib.presign import VISIBILITIES

SCENARIOS = (
    "n4-single",
    "n4-batch",
    "n4-half",
    "n7-batch",
    "wan4",
    "wan7",
    "catchup",
    "reads",
    "reads-observers",
)
ANCHORED = ("n4-single", "n4-batch", "n7-batch")  # wrk saturates; etcd takes the same load
CLEAR_ONLY = ("catchup", "reads", "reads-observers")  # pre-built chains of clear acts


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenario", default="all", choices=(*SCENARIOS, "all"))
    p.add_argument(
        "--visibility",
        default="consortium",
        choices=VISIBILITIES,
        help="acts of the load scenarios: in clear (consortium) or private (parties); "
        "with parties, 'all' runs the load scenarios only",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=35.0,
        help="measurement window of load scenarios, s (>= 30 for figures)",
    )
    p.add_argument("--warmup", type=float, default=10.0, help="load before the window, s")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and 5 s windows: checks the harness, not the node",
    )
    p.add_argument(
        "--rate",
        type=float,
        help="records/s for n4-half (default: half of "
        "the committed rate n4-batch measured in this run)",
    )
    p.add_argument("--batch", type=int, default=100, help="envelopes per batch POST")
    p.add_argument(
        "--connections",
        type=int,
        default=16,
        help="wrk connections per node for single-record POSTs",
    )
    p.add_argument(
        "--batch-connections", type=int, default=4, help="wrk connections per node for batch POSTs"
    )
    p.add_argument(
        "--half-batch",
        type=int,
        default=10,
        help="envelopes per POST of the rate-limited senders (n4-half)",
    )
    p.add_argument("--probe-interval-ms", type=float, default=100.0)
    p.add_argument(
        "--probe-wait", type=float, default=60.0, help="long-poll limit of a latency probe, s"
    )
    p.add_argument(
        "--drain",
        type=float,
        default=60.0,
        help="after the load, wait up to this long for the mempools to empty, s",
    )
    p.add_argument(
        "--sizing-rate", type=float, help="records/s to pre-sign for (default: the signature bound)"
    )
    p.add_argument("--catchup-records", type=int, default=100_000)
    p.add_argument("--read-records", type=int, default=1_000_000)
    p.add_argument("--read-requests", type=int, default=2000)
    p.add_argument(
        "--block-records",
        type=int,
        default=1000,
        help="records per pre-built block (catchup, reads)",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild the read-path chain even if WORKDIR/reads holds one",
    )
    p.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="py-spy the first node of each load scenario for this long",
    )
    p.add_argument(
        "--profile-state",
        metavar="STATE",
        help="the node to py-spy (default: the first, CN); with --visibility parties, "
        "TH is a party of every act",
    )
    p.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / f"comity-bench-{os.getuid()}"
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the pre-signed bodies (node logs and data always stay in WORKDIR)",
    )
    p.add_argument("--processes", type=int, default=cores(), help="signing workers")
    p.add_argument(
        "--wan-rate", type=float, default=200.0, help="records/s offered in wan4 and wan7"
    )
    p.add_argument(
        "--wan-delay-ms", type=float, default=50.0, help="one-way delay of each P2P link, ms"
    )
    p.add_argument(
        "--wan-jitter-ms", type=float, default=10.0, help="plus uniform 0..this per chunk, ms"
    )
    p.add_argument(
        "--no-anchor",
        action="store_true",
        help="skip the etcd anchor after n4-single, n4-batch and n7-batch (benchlib/anchor.py)",
    )
    args = p.parse_args(argv)
    saturating = args.scenario in ("all", *ANCHORED)
    if saturating and not args.no_anchor and not anchor.available():
        p.error(
            "etcd is missing (scripts/bench installs Debian's etcd-server as root); "
            "or give --no-anchor"
        )
    if args.visibility == "parties" and args.scenario in CLEAR_ONLY:
        p.error(f"--scenario {args.scenario} pre-builds clear acts: use --visibility consortium")
    return args


def options(args: argparse.Namespace) -> Options:
    quick = args.quick
    return Options(
        duration_s=5.0 if quick else args.duration,
        warmup_s=2.0 if quick else args.warmup,
        workdir=args.workdir,
        keep=args.keep,
        processes=max(1, args.processes),
        connections=args.connections,
        batch=args.batch,
        batch_connections=args.batch_connections,
        half_batch=args.half_batch,
        rate=args.rate,
        probe_interval_s=args.probe_interval_ms / 1000,
        probe_wait_s=10.0 if quick else args.probe_wait,
        drain_s=15.0 if quick else args.drain,
        sizing_rate=1500.0 if quick else args.sizing_rate,
        catchup_records=2000 if quick else args.catchup_records,
        read_records=5000 if quick else args.read_records,
        read_requests=100 if quick else args.read_requests,
        block_records=args.block_records,
        rebuild=args.rebuild,
        profile_s=args.profile,
        profile_state=args.profile_state,
        verify_s=0.3 if quick else 1.0,
        quick=quick,
        visibility=args.visibility,
        wan_rate=100.0 if quick else args.wan_rate,
        wan_delay_ms=args.wan_delay_ms,
        wan_jitter_ms=args.wan_jitter_ms,
        anchor=not args.no_anchor,
        log=lambda message: print(
            f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True
        ),
    )


def run_one(name: str, opts: Options, batch: int, batch_rate: float | None) -> dict[str, Any]:
    if name in ("n4-single", "n4-batch", "n7-batch"):
        nodes = 7 if name == "n7-batch" else 4
        return run_load(LoadPlan(name, nodes, 1 if name == "n4-single" else batch), opts)
    if name == "n4-half":
        rate = opts.rate if opts.rate is not None else 0.5 * (batch_rate or 0.0)
        if rate <= 0:
            raise RuntimeError(
                "n4-batch committed nothing, so half of it is 0: give n4-half a --rate"
            )
        return run_load(LoadPlan("n4-half", 4, opts.half_batch, rate), opts)
    if name in ("wan4", "wan7"):
        plan = LoadPlan(
            name,
            int(name[3:]),
            opts.half_batch,
            opts.wan_rate,
            delay_ms=opts.wan_delay_ms,
            jitter_ms=opts.wan_jitter_ms,
        )
        return run_load(plan, opts)
    if name == "catchup":
        return run_catchup(opts)
    if name == "reads-observers":
        return run_observer_reads(opts)
    return run_reads(opts)


def run(names: list[str], opts: Options, batch: int) -> list[dict[str, Any]]:
    """Run ``names`` in order; a failed scenario is reported and the next one runs."""
    if "n4-half" in names and opts.rate is None and "n4-batch" not in names:
        opts.log("n4-half needs n4-batch's rate (or --rate): running n4-batch first")
        names = ["n4-batch", *names]
    results: list[dict[str, Any]] = []
    batch_rate: float | None = None
    for name in names:
        try:
            result = run_one(name, opts, batch, batch_rate)
        except Exception as exc:
            opts.log(f"[{name}] FAILED: {exc}")
            result = {"scenario": name, "kind": "error", "error": str(exc)[-4000:]}
        if name == "n4-batch" and result["kind"] == "load":
            batch_rate = result["committed"]["records_per_s"]
        results.append(result)
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    opts = options(args)
    opts.workdir.mkdir(parents=True, exist_ok=True)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    if opts.visibility == "parties":
        names = [n for n in names if n not in CLEAR_ONLY]
    results = run(names, opts, args.batch)
    if args.json:
        print(
            json.dumps(
                {
                    "quick": opts.quick,
                    "visibility": opts.visibility,
                    "cores": cores(),
                    "results": results,
                },
                indent=2,
            )
        )
    else:
        print(report.render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
