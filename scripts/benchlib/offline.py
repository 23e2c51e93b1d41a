"""Scenarios over a pre-built chain: a wiped node catching up, and the read path.

``catchup``: every node starts from the same pre-built chain of
``--catchup-records`` records; then one node is stopped, its data dir wiped,
and it is restarted. The clock runs from the restart until its height reaches
the others' (re-read on every poll). Every record it fetches is verified and
applied by the node's normal block-sync path, so records/s here is the
verify + apply rate of block sync.

``reads``: one node (a 1-member devnet, so the certificate is real and the
node is not left voting alone for peers that never come) serves a pre-built
chain of ``--read-records`` records. A sequential client times GET record,
GET proof and GET search by case_ref for random committed records. The
chain is cached in WORKDIR/reads and reused while its size matches (it takes
minutes to build at 10^6 records); ``--rebuild`` forces a new one.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from benchlib import profile
from benchlib.cluster import Cluster
from benchlib.measure import latency_summary
from benchlib.options import Options
from benchlib.prebuild import Prebuilt, copy_store, prebuild
from benchlib.procstat import CpuSample, cpu_percent, cpu_seconds, peak_rss_mib, rss_mib

SETTLE_TIMEOUT_S = 60.0


def _du_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def _build(opts: Options, cluster: Cluster, records: int, sample: int) -> Prebuilt:
    first = cluster.states[0]
    opts.log(
        f"pre-building {records} records in blocks of {opts.block_records} "
        f"into {cluster.data_dir(first)}"
    )
    built = prebuild(
        cluster.root,
        cluster.data_dir(first) / "ledger",
        records,
        opts.block_records,
        processes=opts.processes,
        sample=sample,
    )
    opts.log(
        f"pre-built {built.records} records / {built.blocks} blocks in "
        f"{built.seconds:.1f} s ({built.records / built.seconds:.0f} records/s)"
    )
    return built


# --- catch-up ----------------------------------------------------------------------------


def run_catchup(opts: Options) -> dict[str, Any]:
    root = opts.scenario_dir("catchup")
    cluster = Cluster(root, 4)
    try:
        built = _build(opts, cluster, opts.catchup_records, 0)
        first = cluster.states[0]
        copy_store(
            cluster.data_dir(first) / "ledger",
            [cluster.data_dir(s) / "ledger" for s in cluster.states[1:]],
        )
        cluster.start()
        cluster.wait_ready()
        _settle(cluster)
        return {
            "scenario": "catchup",
            "kind": "catchup",
            "nodes": 4,
            "prebuild": {
                "records": built.records,
                "blocks": built.blocks,
                "seconds": round(built.seconds, 1),
            },
            **_wipe_and_time(opts, cluster),
        }
    finally:
        cluster.stop_all()


def _settle(cluster: Cluster) -> None:
    """Until every node reports the same height twice in a row."""
    deadline, previous = time.monotonic() + SETTLE_TIMEOUT_S, None
    while time.monotonic() < deadline:
        heights = {cluster.status(s)["height"] for s in cluster.procs}
        if len(heights) == 1 and heights == previous:
            return
        previous = heights
        time.sleep(1)
    raise RuntimeError(f"nodes did not settle on one height: {heights}")


def _wipe_and_time(opts: Options, cluster: Cluster) -> dict[str, Any]:
    lagger = cluster.states[-1]
    others = cluster.states[:-1]
    cluster.stop(lagger)
    cluster.wipe(lagger)
    opts.log(f"[catchup] {lagger} stopped and wiped; restarting it")
    started = time.monotonic()
    cluster.start(lagger)
    api_up = time.monotonic()
    first_cpu = CpuSample(cpu_seconds(cluster.pid(lagger)), api_up)
    raw = cluster.root / "profile.raw.txt"
    spy = profile.start(cluster.pid(lagger), opts.profile_s, raw) if opts.profile_s > 0 else None
    limit_s = max(120.0, opts.catchup_records / 200)
    while True:
        target = max(cluster.status(s)["height"] for s in others)
        status = cluster.status(lagger)
        if status["height"] >= target:
            break
        if time.monotonic() - started > limit_s:
            raise RuntimeError(
                f"{lagger} still at height {status['height']} of {target} "
                f"after {limit_s:.0f} s:\n{cluster.log_tail(lagger)}"
            )
        time.sleep(0.2)
    done = time.monotonic()
    seconds = done - started
    last_cpu = CpuSample(cpu_seconds(cluster.pid(lagger)), done)
    profiled: dict[str, Any] = {}
    if spy is not None:
        spy.wait(opts.profile_s + 30)
        profiled["profile"] = profile.summarise(raw)
    return {
        "synced": {
            "records": status["ledger_size"],
            "blocks": status["height"],
            "seconds": round(seconds, 2),
            "api_up_s": round(api_up - started, 2),
            "records_per_s": round(status["ledger_size"] / seconds, 1),
            "blocks_per_s": round(status["height"] / seconds, 2),
        },
        "node_stats": [
            {
                "state": lagger,
                "cpu_percent": round(cpu_percent(first_cpu, last_cpu), 1),
                "peak_rss_mib": round(peak_rss_mib(cluster.pid(lagger)), 1),
            }
        ],
        **profiled,
    }


# --- the read path -----------------------------------------------------------------------


def run_reads(opts: Options) -> dict[str, Any]:
    root = opts.workdir / "reads"
    marker = root / "prebuilt.json"
    cached = None if opts.rebuild or not marker.exists() else json.loads(marker.read_text())
    if cached is not None and (
        cached["records"] != opts.read_records or cached["block_records"] != opts.block_records
    ):
        cached = None
    if cached is None:
        root = opts.scenario_dir("reads")
    cluster = Cluster(root, 1)
    try:
        if cached is None:
            built = _build(opts, cluster, opts.read_records, opts.read_requests)
            cached = {**asdict(built), "block_records": opts.block_records}
            marker.write_text(json.dumps(cached))
        else:
            opts.log(f"[reads] reusing the {cached['records']}-record chain in {root}")
        return _serve_reads(opts, cluster, cached)
    finally:
        cluster.stop_all()


def _serve_reads(opts: Options, cluster: Cluster, built: dict[str, Any]) -> dict[str, Any]:
    state = cluster.states[0]
    started = time.monotonic()
    cluster.start(state)
    up_s = time.monotonic() - started
    rng = random.Random(2)
    ids, cases = built["sample_ids"], built["sample_cases"]
    picks = [rng.randrange(len(ids)) for _ in range(opts.read_requests)]
    checks: dict[str, tuple[Callable[[int], str], Callable[[Any], bool]]] = {
        "record": (
            lambda i: f"/v1/records/{ids[i]}",
            lambda body: body.get("status") == "committed",
        ),
        "proof": (
            lambda i: f"/v1/records/{ids[i]}/proof",
            lambda body: bool(body.get("audit_path")),
        ),
        "search": (
            lambda i: f"/v1/search?case_ref={cases[i]}",
            lambda body: len(body.get("results", [])) > 0,
        ),
    }
    results: dict[str, Any] = {}
    with httpx.Client(base_url=cluster.urls[state], timeout=30) as client:
        for name, (path, ok) in checks.items():
            results[name] = _time_requests(client, [path(i) for i in picks], ok)
    pid = cluster.pid(state)
    return {
        "scenario": "reads",
        "kind": "reads",
        "nodes": 1,
        "chain": {
            "records": built["records"],
            "blocks": built["blocks"],
            "prebuild_s": round(built["seconds"], 1),
            "store_mib": round(_du_mib(cluster.data_dir(state)), 1),
            "node_start_s": round(up_s, 2),
        },
        "requests": results,
        "node_stats": [
            {
                "state": state,
                "rss_mib": round(rss_mib(pid), 1),
                "peak_rss_mib": round(peak_rss_mib(pid), 1),
            }
        ],
    }


def _time_requests(
    client: httpx.Client, paths: list[str], ok: Callable[[Any], bool]
) -> dict[str, Any]:
    for path in paths[:20]:  # warm the connection and the node's code paths
        client.get(path)
    latencies, bad = [], 0
    started = time.monotonic()
    for path in paths:
        t0 = time.perf_counter()
        reply = client.get(path)
        latencies.append((time.perf_counter() - t0) * 1000)
        if reply.status_code != 200 or not ok(reply.json()):
            bad += 1
    wall = time.monotonic() - started
    return {
        **latency_summary(latencies),
        "errors": bad,
        "sequential_per_s": round(len(paths) / wall, 1) if wall else 0.0,
    }
