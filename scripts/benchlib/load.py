"""Load scenarios: N nodes under wrk or rate-limited load, with a latency probe.

Timeline of one run (all times from one monotonic clock):

    presign bodies -> start N nodes, wait /readyz -> T0: load + probe start
    T0 + warmup: window opens (status + /proc snapshot every second)
    T0 + warmup + duration: window closes, nodes' peak RSS read, load stops
    probes that STARTED inside the window are waited for and kept

Committed records/s is the growth of the chain's ledger_size over the window
(see measure.py), so the figure is a sustained rate after warm-up, not a
burst, and counts only records in committed blocks.

With ``--visibility parties`` the same acts are private acts (presign.py):
each state's load and probes go to its own node, a party of every act its
investigator signs, as docs/PRIVACY.md requires.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.cli.devnet import CHAIN_ID
from benchlib import loadgen, presign, profile
from benchlib.anchor import run_anchor
from benchlib.cluster import Cluster
from benchlib.measure import Window, cores, latency_summary, verify_rate_per_core
from benchlib.options import Options
from benchlib.private_bodies import summary as private_summary
from ledger.records import format_time
from node.clock import utcnow
from node.config import dump_config
from tests.fault.proxy import Links

SIZING_MARGIN = 1.25  # pre-sign this much more than the sizing rate needs
# wrk is set to run this long past the window and is stopped (SIGINT) when the
# window closes: the last snapshots may take seconds on a saturated node, and
# the load must not stop before them.
WRK_TAIL_S = 60.0


@dataclass(frozen=True, slots=True)
class LoadPlan:
    name: str
    nodes: int
    batch: int  # 1: POST /v1/records; more: POST /v1/records/batch
    rate: float | None = None  # records/s (rate-limited senders); None: wrk saturates
    delay_ms: float = 0.0  # one-way delay of every P2P link (a WAN), 0: loopback as is
    jitter_ms: float = 0.0  # plus uniform 0..jitter_ms per chunk


def signature_bound(nodes: int, verify_s: float) -> dict[str, Any]:
    per_core = verify_rate_per_core(verify_s)
    return {
        "cores": cores(),
        "verify_per_s_per_core": round(per_core),
        "records_per_s": round(cores() * per_core / nodes, 1),
    }


def _probe_targets(
    cluster: Cluster, signers: list[presign.Signer], count: int, opts: Options
) -> list[loadgen.ProbeTarget]:
    per_signer = math.ceil(count / len(signers))
    jobs = [
        job
        for s in signers
        for job in presign.jobs_for(
            s,
            CHAIN_ID,
            "P",
            per_signer,
            format_time(utcnow()),
            job_records=per_signer,
            visibility=opts.visibility,
        )
    ]
    signed = {
        job.signer.state: items
        for job, items in zip(jobs, presign.sign_all(jobs, opts.processes), strict=True)
    }
    targets = []
    for k in range(count):  # probe k goes to node k mod N, signed by that node's state
        state = signers[k % len(signers)].state
        item = signed[state][k // len(signers)]
        targets.append(loadgen.ProbeTarget(cluster.urls[state], item.post, item.id))
    return targets


def _start_generators(
    plan: LoadPlan,
    opts: Options,
    cluster: Cluster,
    bodies: dict[str, Path],
    root: Path,
    start_at: float,
    stop_at: float,
) -> tuple[list[loadgen.Wrk], list[Any]]:
    wrks: list[loadgen.Wrk] = []
    senders: list[Any] = []
    for state in cluster.states:
        if plan.rate is None:
            connections = opts.connections if plan.batch == 1 else opts.batch_connections
            # One connection per wrk thread: the Lua state is per thread, so a
            # 503'd body is resent by the connection it was refused on.
            wrks.append(
                loadgen.Wrk(
                    cluster.urls[state],
                    bodies[state],
                    threads=connections,
                    connections=connections,
                    duration_s=stop_at - time.monotonic() + WRK_TAIL_S,
                    batch=plan.batch > 1,
                    log_path=root / f"wrk.{state}.log",
                )
            )
        else:
            requests_per_s = plan.rate / len(cluster.states) / opts.half_batch
            senders.append(
                loadgen.start_rate_sender(
                    cluster.urls[state],
                    bodies[state],
                    requests_per_s,
                    start_at,
                    stop_at,
                    root / f"rate.{state}.json",
                )
            )
    return wrks, senders


def run_load(plan: LoadPlan, opts: Options) -> dict[str, Any]:
    root = opts.scenario_dir(plan.name)
    opts.log(f"[{plan.name}] preparing a {plan.nodes}-node devnet in {root}")
    cluster = Cluster(root, plan.nodes)
    bodies: dict[str, Path] = {}
    links = _wan(cluster, plan) if plan.delay_ms or plan.jitter_ms else None
    try:
        result = _run(plan, opts, root, cluster, bodies)
        if links is not None:
            result["wan"] = {
                "delay_ms": plan.delay_ms,
                "jitter_ms": plan.jitter_ms,
                "links": len(links.relays),
                "connections": sum(r.connections for r in links.relays.values()),
            }
        cluster.stop_all()  # the anchor runs alone on the machine, as the nodes did
        if opts.anchor and plan.rate is None:
            result["anchor"] = run_anchor(
                plan.name,
                plan.nodes,
                plan.batch,
                bodies,
                opts,
                root,
                result["committed"]["records_per_s"],
            )
    finally:
        cluster.stop_all()
        if links is not None:
            links.close()
        if not opts.keep:  # pre-signed bodies are ~100 MB a scenario; logs stay
            shutil.rmtree(root / "bodies", ignore_errors=True)
    if opts.visibility == "parties":  # the stores, once their nodes have stopped
        result["private"] = private_summary(root, cluster.states)
    return result


def _wan(cluster: Cluster, plan: LoadPlan) -> Links:
    """Every directed P2P link through a userspace relay (tests/fault/proxy.py) that
    delays each chunk, both ways, by ``delay_ms`` + U(0, ``jitter_ms``): each node's
    config lists its peers at their relays (``peers`` overrides the genesis URLs)."""
    links = Links({r["state"]: int(r["p2p_url"].rsplit(":", 1)[1]) for r in cluster.rows}, 0)
    for state in cluster.states:
        path = cluster.root / state / "node.toml"
        config = tomllib.loads(path.read_text())
        config["peers"] = [
            {"state": other, "p2p_url": links.url(state, other)}
            for other in cluster.states
            if other != state
        ]
        path.write_text(dump_config(config))
    links.shape(delay_ms=plan.delay_ms, jitter_ms=plan.jitter_ms)
    return links


def _presign(
    plan: LoadPlan, opts: Options, cluster: Cluster, root: Path, bound: dict[str, Any]
) -> tuple[dict[str, Path], list[loadgen.ProbeTarget]]:
    batch = plan.batch if plan.rate is None else opts.half_batch
    sizing = plan.rate or opts.sizing_rate or bound["records_per_s"]
    span_s = opts.warmup_s + opts.duration_s + 10
    per_signer = math.ceil(sizing * span_s * SIZING_MARGIN / plan.nodes / batch) * batch
    signers = presign.investigators(root, cluster.states)
    started = time.monotonic()
    bodies = presign.write_bodies(
        signers,
        per_signer,
        batch,
        root / "bodies",
        chain_id=CHAIN_ID,
        tag="L",
        occurred_at=format_time(utcnow()),
        processes=opts.processes,
        visibility=opts.visibility,
    )
    probes = _probe_targets(
        cluster,
        signers,
        math.ceil((opts.warmup_s + opts.duration_s) / opts.probe_interval_s) + 1,
        opts,
    )
    opts.log(
        f"[{plan.name}] pre-signed {per_signer * plan.nodes} {opts.visibility} records "
        f"({per_signer} per node, {batch} per body) in {time.monotonic() - started:.1f} s"
    )
    return bodies, probes


def _run(
    plan: LoadPlan, opts: Options, root: Path, cluster: Cluster, bodies: dict[str, Path]
) -> dict[str, Any]:
    """One load scenario; ``bodies`` receives the pre-signed bodies' files, by state."""
    bound = signature_bound(plan.nodes, opts.verify_s)  # before any load: a quiet core
    signed, probes = _presign(plan, opts, cluster, root, bound)
    bodies.update(signed)
    cluster.start()
    cluster.wait_ready()
    start_at = time.monotonic() + 0.5
    window_at = start_at + opts.warmup_s
    stop_at = window_at + opts.duration_s
    opts.log(
        f"[{plan.name}] nodes ready; load for {opts.warmup_s:.0f} s warm-up + "
        f"{opts.duration_s:.0f} s window"
    )
    wrks, senders = _start_generators(plan, opts, cluster, bodies, root, start_at, stop_at)
    prober = loadgen.start_probe(
        probes, opts.probe_interval_s, start_at, stop_at, opts.probe_wait_s, root / "probe.json"
    )
    window = Window(cluster, [w.pid for w in wrks] + [s.pid for s in senders] + [prober.pid])
    window.watch_warmup(window_at)
    spy = (
        profile.start(
            cluster.pid(opts.profile_state or cluster.states[0]),
            min(opts.profile_s, opts.duration_s),
            root / "profile.raw.txt",
        )
        if opts.profile_s > 0
        else None
    )
    window.run(stop_at - time.monotonic())
    nodes = window.node_rows()  # peak RSS while the nodes are still up
    load = _finish_generators(plan, opts, wrks, senders, root)
    drain = _drain(cluster, opts.drain_s)
    prober.join(opts.probe_wait_s + 30)
    if prober.is_alive():  # its own timeouts failed: end it, report what it wrote
        prober.terminate()
    latency = _probe_latency(root / "probe.json", window.snapshots[0].at, stop_at)
    committed = {**window.summary(), "timeline": window.timeline()}
    result: dict[str, Any] = {
        "scenario": plan.name,
        "kind": "load",
        "nodes": plan.nodes,
        "visibility": opts.visibility,
        "load": load,
        "committed": committed,
        "latency_ms": latency,
        "node_stats": nodes,
        "after_load": drain,
        "bound": {
            **bound,
            "fraction": round(committed["records_per_s"] / bound["records_per_s"], 3),
        },
    }
    if spy is not None:
        spy.wait(opts.profile_s + 30)
        result["profile"] = profile.summarise(root / "profile.raw.txt")
    return result


def _finish_generators(
    plan: LoadPlan, opts: Options, wrks: list[loadgen.Wrk], senders: list[Any], root: Path
) -> dict[str, Any]:
    load: dict[str, Any] = {"batch": plan.batch if plan.rate is None else opts.half_batch}
    if wrks:
        results = [w.finish(30) for w in wrks]
        total = {
            key: sum(r[key] for r in results)
            for key in (
                "requests",
                "sent",
                "wraps",
                "ok2xx",
                "overloaded",
                "other_status",
                "item_errors",
                "item_overloaded",
            )
        }
        seconds = max(r["duration_us"] for r in results) / 1e6
        load.update(
            generator="wrk",
            connections=len(wrks)
            * (opts.connections if plan.batch == 1 else opts.batch_connections),
            **total,
            requests_per_s=round(total["requests"] / seconds, 1) if seconds else 0.0,
            post_latency_ms_p50_max=max(r["latency_ms"]["p50"] for r in results),
            post_latency_ms_p99_max=max(r["latency_ms"]["p99"] for r in results),
            exhausted=total["wraps"] > 0,
        )
    else:
        for sender in senders:
            sender.join(60)
            if sender.is_alive():
                sender.terminate()
        parsed = [json.loads(p.read_text()) for p in sorted(root.glob("rate.*.json"))]
        load.update(
            generator="python-rate",
            target_records_per_s=plan.rate,
            sent=sum(p["sent"] for p in parsed),
            item_errors=sum(p["item_errors"] for p in parsed),
            lag_max_s=max((p["lag_max_s"] for p in parsed), default=0.0),
            exhausted=any(p["exhausted"] for p in parsed),
        )
    return load


def _drain(cluster: Cluster, limit_s: float) -> dict[str, Any]:
    """After the load stops: how long the backlog (mempools) takes to commit.

    Not part of the rate, which is the window's; it tells what the window
    left queued, and makes sure a run that committed nothing under load
    says whether the chain moves at all.
    """
    started = time.monotonic()
    first = max(int(cluster.status(s)["ledger_size"]) for s in cluster.procs)
    while True:
        statuses = [cluster.status(s) for s in cluster.procs]
        pending = max(int(st["mempool"]["records"]) for st in statuses)
        elapsed = time.monotonic() - started
        if pending == 0 or elapsed >= limit_s:
            break
        time.sleep(0.5)
    size = max(int(st["ledger_size"]) for st in statuses)
    return {
        "seconds": round(elapsed, 1),
        "records": size - first,
        "mempool_left": pending,
        "ledger_size": size,
        "height": max(int(st["height"]) for st in statuses),
    }


def _probe_latency(path: Path, window_start: float, window_end: float) -> dict[str, Any]:
    rows = json.loads(path.read_text()) if path.exists() else []
    inside = [r for r in rows if window_start <= r["t"] <= window_end]
    summary = latency_summary([r["ms"] for r in inside if r["ms"] is not None])
    summary["failed"] = sum(1 for r in inside if r["ms"] is None)
    errors: dict[str, int] = {}
    for row in inside:
        if row["error"]:
            errors[row["error"]] = errors.get(row["error"], 0) + 1
    summary["errors"] = errors
    return summary
