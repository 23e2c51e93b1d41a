"""The anchor: an etcd 3.4 cluster on 127.0.0.1, driven by wrk exactly as Comity was.

After each saturating load scenario (n4-single, n4-batch, n7-batch) the harness
starts an etcd cluster with as many members as the scenario had nodes, fsync on
(etcd's default; ``--unsafe-no-fsync`` is never given), and drives it with the
same wrk script (post_bodies.lua), the same connections per member, the same
warm-up and window, and the same pre-signed bytes: each Comity envelope becomes
the value of one key, so etcd replicates and fsyncs the same payload Comity
commits. A single-record POST becomes ``PUT`` (``/v3/kv/put``, the gRPC-gateway
JSON API, keys and values base64); a batch of B envelopes becomes one ``txn``
of B puts (``/v3/kv/txn``, ``--max-txn-ops`` B). etcd answers a put only once it
is committed by a majority and applied, so its committed rate is the growth of
its revision over the window (a linearizable read at each end) times the puts
per request: a put or a txn takes one revision, and nothing else writes. That is
Comity's growth of ``ledger_size``. etcd outruns the bodies Comity's rate was
sized for, so wrk wraps round its file: a wrapped put overwrites its key, which
costs etcd what a new key does (MVCC writes a new revision either way).

The report prints Comity ÷ etcd per scenario. The two systems differ in what
they promise: etcd's Raft tolerates crash faults of a minority and signs
nothing; Comity's BFT tolerates Byzantine faults of fewer than a third and checks
an Ed25519 signature per record at every node. The ratio is the price of that,
on this machine, in this hour.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from api.cli import devnet
from benchlib import loadgen
from benchlib.options import Options
from benchlib.procstat import CpuSample, cpu_percent, cpu_seconds, peak_rss_mib

#: Ports of the anchor's members: client P+i, peer P+100+i, in blocks of
#: devnet.PORT_BLOCK from 30800, past the nodes' region (cluster.py) and below
#: Linux's ephemeral ports (32768).
REGION, SLOTS = 30800, 9
START_TIMEOUT_S = 30.0
PREFIX = b"bench/"
RANGE_END = b"bench0"  # the key after every key that starts with "bench/"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def available() -> bool:
    return shutil.which("etcd") is not None


def version() -> str:
    out = subprocess.run(["etcd", "--version"], capture_output=True, text=True, check=False)
    first = out.stdout.splitlines()[0] if out.stdout else "etcd"
    return first.replace("etcd Version: ", "etcd ")


def translate(bodies: Path, out: Path, member: int, batch: int) -> int:
    """Comity's bodies file as etcd request bodies, one per line; returns the puts.

    Each envelope (a line, or an item of a ``{"envelopes": [...]}`` line) is one
    put of its exact bytes, under a key unique to this member and line."""
    count = 0
    with bodies.open("rb") as src, out.open("wb") as dst:
        for number, line in enumerate(src):
            line = line.rstrip(b"\n")
            if not line:
                continue
            if batch > 1:
                items = [json.dumps(e, separators=(",", ":")).encode() for e in _envelopes(line)]
            else:
                items = [line]
            puts = []
            for k, item in enumerate(items):
                key = PREFIX + f"{member}/{number}/{k}".encode()
                puts.append({"key": _b64(key), "value": _b64(item)})
            count += len(puts)
            body = puts[0] if batch == 1 else {"success": [{"requestPut": p} for p in puts]}
            dst.write(json.dumps(body, separators=(",", ":")).encode() + b"\n")
    return count


def _envelopes(line: bytes) -> list[Any]:
    envelopes: list[Any] = json.loads(line)["envelopes"]
    return envelopes


class Etcd:
    """``members`` etcd processes forming one cluster, data under ``root``."""

    def __init__(self, root: Path, members: int, batch: int) -> None:
        self.root = root
        self.base = devnet.find_lane_base_port(members, REGION, SLOTS)
        names = [f"m{i}" for i in range(members)]
        self.urls = [f"http://127.0.0.1:{self.base + i}" for i in range(members)]
        peers = [f"http://127.0.0.1:{self.base + devnet.P2P_OFFSET + i}" for i in range(members)]
        cluster = ",".join(f"{n}={p}" for n, p in zip(names, peers, strict=True))
        self.procs: list[subprocess.Popen[bytes]] = []
        for name, url, peer in zip(names, self.urls, peers, strict=True):
            log = (root / f"etcd.{name}.log").open("ab")
            cmd = [
                "etcd",
                "--name",
                name,
                "--data-dir",
                str(root / f"etcd.{name}"),
                "--listen-client-urls",
                url,
                "--advertise-client-urls",
                url,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                cluster,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                f"comity-bench-{self.base}",
                "--max-txn-ops",
                str(max(128, batch)),
                "--log-level",
                "warn",
                "--logger",
                "zap",
            ]
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
            log.close()

    def wait_ready(self, client: httpx.Client) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        for url, proc in zip(self.urls, self.procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"etcd at {url} exited {proc.returncode}; see etcd.*.log")
                try:
                    if client.get(f"{url}/health").json().get("health") == "true":
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"etcd at {url} not healthy in {START_TIMEOUT_S} s")
                time.sleep(0.2)

    def revision(self, client: httpx.Client) -> int:
        """The cluster's revision, by a linearizable read (it waits for the leader)."""
        reply = client.post(
            f"{self.urls[0]}/v3/kv/range",
            json={"key": _b64(PREFIX), "range_end": _b64(RANGE_END), "count_only": True},
        )
        reply.raise_for_status()
        return int(reply.json()["header"]["revision"])

    def cpu(self) -> list[CpuSample]:
        now = time.monotonic()
        return [CpuSample(cpu_seconds(p.pid), now) for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def run_anchor(
    name: str,
    members: int,
    batch: int,
    bodies: dict[str, Path],
    opts: Options,
    root: Path,
    comity_records_per_s: float,
) -> dict[str, Any]:
    """etcd under ``bodies`` (the scenario's, one file per member) with the scenario's
    wrk settings; its committed puts/s and Comity ÷ etcd."""
    folder = root / "anchor"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    files = []
    for i, path in enumerate(bodies.values()):
        files.append(folder / f"bodies.{i}.jsonl")
        translate(path, files[-1], i, batch)
    etcd = Etcd(folder, members, batch)
    connections = opts.connections if batch == 1 else opts.batch_connections
    try:
        with httpx.Client(timeout=30) as client:
            etcd.wait_ready(client)
            opts.log(f"[{name}] anchor: {members}-member etcd ready; same load as the nodes")
            start_at = time.monotonic()
            window_at = start_at + opts.warmup_s
            stop_at = window_at + opts.duration_s
            wrks = [
                loadgen.Wrk(
                    url,
                    files[i],
                    threads=connections,
                    connections=connections,
                    duration_s=stop_at - start_at + 30,
                    batch=False,
                    path="/v3/kv/put" if batch == 1 else "/v3/kv/txn",
                    log_path=folder / f"wrk.{i}.log",
                )
                for i, url in enumerate(etcd.urls)
            ]
            time.sleep(max(0.0, window_at - time.monotonic()))
            first_rev, first_cpu = etcd.revision(client), etcd.cpu()
            time.sleep(max(0.0, stop_at - time.monotonic()))
            last_rev, last_cpu = etcd.revision(client), etcd.cpu()
            window_s = last_cpu[0].at - first_cpu[0].at
            results = [w.finish(30) for w in wrks]
            rss = [round(peak_rss_mib(p.pid), 1) for p in etcd.procs]
    finally:
        etcd.stop()
        if not opts.keep:  # the bodies and etcd's data, as for the nodes' bodies; logs stay
            for path in files:
                path.unlink(missing_ok=True)
            for i in range(members):
                shutil.rmtree(folder / f"etcd.m{i}", ignore_errors=True)
    puts = (last_rev - first_rev) * batch
    puts_per_s = puts / window_s if window_s > 0 else 0.0
    return {
        "system": version(),
        "members": members,
        "fsync": True,
        "window_s": round(window_s, 1),
        "puts": puts,
        "puts_per_s": round(puts_per_s, 1),
        "wraps": sum(r["wraps"] for r in results),
        "ratio": round(comity_records_per_s / puts_per_s, 3) if puts_per_s > 0 else None,
        "requests": sum(r["requests"] for r in results),
        "non_2xx": sum(r["overloaded"] + r["other_status"] for r in results),
        "put_latency_ms_p50_max": max(r["latency_ms"]["p50"] for r in results),
        "put_latency_ms_p99_max": max(r["latency_ms"]["p99"] for r in results),
        "cpu_percent": [
            round(cpu_percent(a, b), 1) for a, b in zip(first_cpu, last_cpu, strict=True)
        ],
        "peak_rss_mib": rss,
    }
