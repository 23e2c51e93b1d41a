"""What a scenario measures: the signature bound, window samples, percentiles.

Committed throughput is read from the nodes, never from the load generator:
``ledger_size`` of ``GET /v1/status`` counts records in committed blocks, so
accepted-but-queued, refused or resent records cannot inflate it. The chain's
size at an instant is the largest ``ledger_size`` any node reports (a block
a node has applied carries a quorum certificate, so it is committed).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import nacl.signing

from benchlib.cluster import Cluster
from benchlib.procstat import CpuSample, cpu_percent, cpu_seconds, peak_rss_mib


def cores() -> int:
    return len(os.sched_getaffinity(0))


def verify_rate_per_core(seconds: float = 1.0) -> float:
    """Ed25519 verifications per second on one core with PyNaCl (libsodium)."""
    key = nacl.signing.SigningKey(bytes(range(32)))
    message = b'{"record":"a typical few hundred bytes of canonical JSON"}' * 6
    signed = key.sign(message)
    verify_key = key.verify_key
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            verify_key.verify(signed.message, signed.signature)
        count += 200
    return count / elapsed


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolated percentile of ``values`` (``fraction`` in [0, 1])."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(values_ms: list[float]) -> dict[str, Any]:
    def rounded(fraction: float) -> float | None:
        value = percentile(values_ms, fraction)
        return None if value is None else round(value, 1)

    return {
        "p50": rounded(0.50),
        "p95": rounded(0.95),
        "p99": rounded(0.99),
        "samples": len(values_ms),
    }


@dataclass
class Snapshot:
    at: float
    height: int
    ledger_size: int
    per_node: dict[str, dict[str, int]]
    cpu: dict[str, CpuSample]
    gen_cpu_s: float


@dataclass
class Window:
    """Snapshots of the cluster taken about once a second during a measurement."""

    cluster: Cluster
    generator_pids: list[int] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    warmup: list[Snapshot] = field(default_factory=list)  # timeline only, not measured

    def take(self) -> Snapshot:
        states = list(self.cluster.procs)
        cpu = {state: self.cluster.cpu(state) for state in states}
        # All nodes at once: a saturated node can take seconds to answer, and
        # asking in turn would make one snapshot span many seconds.
        with ThreadPoolExecutor(len(states)) as pool:
            replies = list(pool.map(self.cluster.status, states))
        per_node = {
            state: {
                "height": int(status["height"]),
                "ledger_size": int(status["ledger_size"]),
                "mempool": int(status["mempool"]["records"]),
            }
            for state, status in zip(states, replies, strict=True)
        }
        snap = Snapshot(
            time.monotonic(),
            max(n["height"] for n in per_node.values()),
            max(n["ledger_size"] for n in per_node.values()),
            per_node,
            cpu,
            sum(cpu_seconds(pid) for pid in self.generator_pids),
        )
        self.snapshots.append(snap)
        return snap

    def run(self, seconds: float, every_s: float = 1.0) -> None:
        """Snapshot now, then every ``every_s`` until ``seconds`` have passed."""
        start = self.take().at
        while (left := start + seconds - time.monotonic()) > 0:
            time.sleep(min(every_s, left))
            self.take()
        if len(self.snapshots) < 2:  # the first snapshot outlasted the window
            self.take()

    def watch_warmup(self, until: float, every_s: float = 1.0) -> None:
        """Snapshots during warm-up, kept apart: they show the ramp, not the rate."""
        while (left := until - time.monotonic()) > 0.05:
            self.take()
            time.sleep(min(every_s, left))
        self.warmup, self.snapshots = self.snapshots, []

    def timeline(self) -> list[list[float]]:
        """[seconds from the first snapshot, height, ledger_size, mempool records (sum)]."""
        snaps = self.warmup + self.snapshots
        return [
            [
                round(s.at - snaps[0].at, 1),
                s.height,
                s.ledger_size,
                sum(n["mempool"] for n in s.per_node.values()),
            ]
            for s in snaps
        ]

    def summary(self) -> dict[str, Any]:
        first, last = self.snapshots[0], self.snapshots[-1]
        wall = last.at - first.at
        records = last.ledger_size - first.ledger_size
        blocks = last.height - first.height
        steps = [
            (b.ledger_size - a.ledger_size) / (b.at - a.at)
            for a, b in zip(self.snapshots, self.snapshots[1:], strict=False)
            if b.at > a.at
        ]
        return {
            "window_s": round(wall, 2),
            "records": records,
            "records_per_s": round(records / wall, 1) if wall > 0 else 0.0,
            "blocks": blocks,
            "blocks_per_s": round(blocks / wall, 2) if wall > 0 else 0.0,
            "mean_block_records": round(records / blocks, 1) if blocks else 0.0,
            # spread of the ~1 s rates: a sustained rate has no burst and no stall
            "per_second_min": round(min(steps), 1) if steps else 0.0,
            "per_second_max": round(max(steps), 1) if steps else 0.0,
            "mempool_end": {s: n["mempool"] for s, n in last.per_node.items()},
            "loadgen_cpu_percent": round(100 * (last.gen_cpu_s - first.gen_cpu_s) / wall, 1)
            if wall > 0
            else 0.0,
        }

    def node_rows(self) -> list[dict[str, Any]]:
        first, last = self.snapshots[0], self.snapshots[-1]
        return [
            {
                "state": state,
                "cpu_percent": round(cpu_percent(first.cpu[state], last.cpu[state]), 1),
                "peak_rss_mib": round(peak_rss_mib(self.cluster.pid(state)), 1),
                "height": last.per_node[state]["height"],
            }
            for state in last.per_node
        ]
