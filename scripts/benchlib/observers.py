"""Reads served by one validator against reads spread over three observer nodes.

``reads-observers``: a 1-member devnet (CN) serves a pre-built chain of
``--catchup-records`` records; three observer nodes of CN (docs/OPERATIONS.md,
"Observer nodes") are admitted by ``add_observer`` votes, sync that chain and
follow it. The same closed-loop load, ``READERS`` client threads each with its
own keep-alive connection doing GET record of random committed ids, then
runs for ``--duration`` seconds against the validator alone, and for as long
with the threads spread round robin over the three observers. Reported:
requests/s, latency percentiles and errors per set-up, and the CPU% of each
serving node. Every node and the client share one machine, so the row shows
what observers take off a validator on that machine, not the capacity of
three hosts.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx

from api.cli import devnet
from benchlib.cluster import Cluster
from benchlib.measure import latency_summary
from benchlib.options import Options
from benchlib.prebuild import prebuild
from benchlib.procstat import cpu_percent
from ledger.keys import SigningKey, load_signing_key, save_signing_key
from node.authoring import complete_record, sign_envelope
from node.config import dump_config

OBSERVERS = ("CN-obs1", "CN-obs2", "CN-obs3")
READERS = 12  # client threads, each with one keep-alive connection
SYNC_TIMEOUT_S = 600.0


def run_observer_reads(opts: Options) -> dict[str, Any]:
    root = opts.scenario_dir("reads-observers")
    cluster = Cluster(root, 1)
    try:
        opts.log(f"[reads-observers] pre-building {opts.catchup_records} records")
        built = prebuild(
            root,
            cluster.data_dir("CN") / "ledger",
            opts.catchup_records,
            opts.block_records,
            processes=opts.processes,
            sample=opts.read_requests,
        )
        cluster.start("CN")
        cluster.wait_ready()
        _add_observers(opts, cluster)
        ids = built.sample_ids
        runs = {
            "validator": _closed_loop(opts, cluster, ["CN"], ids),
            "observers": _closed_loop(opts, cluster, list(OBSERVERS), ids),
        }
        return {
            "scenario": "reads-observers",
            "kind": "reads-observers",
            "nodes": 1 + len(OBSERVERS),
            "chain": {"records": built.records, "blocks": built.blocks},
            "readers": READERS,
            "runs": runs,
        }
    finally:
        cluster.stop_all()


def _add_observers(opts: Options, cluster: Cluster) -> None:
    """Write, admit (one vote each: CN is the only member) and start the observers,
    then wait until each holds the validator's height."""
    base = cluster.base + 1  # the rest of the 1-node cluster's port block (this lane's)
    for i, name in enumerate(OBSERVERS):
        if not devnet.port_free(base + i) or not devnet.port_free(base + devnet.P2P_OFFSET + i):
            raise RuntimeError(f"port {base + i} or its P2P port is taken")
        folder = cluster.root / name
        folder.mkdir()
        key = SigningKey.generate()
        save_signing_key(folder / "node.key", key)
        config = {
            "state": "CN",
            "role": "observer",
            "genesis_path": "../genesis.json",
            "node_key_path": "node.key",
            "data_dir": "data",
            "open_read": True,
            "log_format": "text",
            "api": {"host": "127.0.0.1", "port": base + i},
            "p2p": {"host": "127.0.0.1", "port": base + devnet.P2P_OFFSET + i},
        }
        (folder / "node.toml").write_text(dump_config(config))
        cluster.urls[name] = f"http://127.0.0.1:{base + i}"
        _admit(cluster, key.public_hex, name)
    cluster.start(*OBSERVERS)
    target = cluster.status("CN")["height"]
    started = time.monotonic()
    for name in OBSERVERS:
        while cluster.status(name)["height"] < target:
            if time.monotonic() - started > SYNC_TIMEOUT_S:
                raise RuntimeError(f"{name} did not sync:\n{cluster.log_tail(name)}")
            time.sleep(0.5)
    opts.log(
        f"[reads-observers] {len(OBSERVERS)} observers synced {target} blocks "
        f"in {time.monotonic() - started:.1f} s"
    )


def _admit(cluster: Cluster, pubkey: str, label: str) -> None:
    admin = load_signing_key(cluster.root / "CN" / "admin.key")
    url = cluster.urls["CN"]
    proposal = {
        "type": "member_proposal",
        "action": "add_observer",
        "state": "CN",
        "node_pubkey": pubkey,
        "label": label,
    }
    record_id = _commit(cluster, url, admin, proposal)
    _commit(cluster, url, admin, {"type": "member_vote", "proposal": record_id, "vote": "yes"})


def _commit(cluster: Cluster, url: str, key: SigningKey, body: dict[str, Any]) -> str:
    record = complete_record(
        {**body, "actor": {"state": "CN", "agency": "administration"}}, chain_id=devnet.CHAIN_ID
    )
    reply = cluster.http.post(f"{url}/v1/records", json=sign_envelope(key, record))
    reply.raise_for_status()
    record_id: str = reply.json()["id"]
    view = cluster.http.get(f"{url}/v1/records/{record_id}", params={"wait": 30}, timeout=40)
    if view.json().get("status") != "committed":
        raise RuntimeError(f"governance record {record_id} not committed: {view.text}")
    return record_id


def _closed_loop(
    opts: Options, cluster: Cluster, targets: list[str], ids: list[str]
) -> dict[str, Any]:
    """``READERS`` threads, thread i on ``targets[i % len]``, for ``duration_s``."""
    latencies: list[list[float]] = [[] for _ in range(READERS)]
    errors = [0] * READERS
    stop = threading.Event()

    def reader(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=cluster.urls[targets[i % len(targets)]], timeout=30) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                reply = c.get(f"/v1/records/{ids[rng.randrange(len(ids))]}")
                latencies[i].append((time.perf_counter() - t0) * 1000)
                if reply.status_code != 200:
                    errors[i] += 1

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(READERS)]
    before = {t: cluster.cpu(t) for t in targets}
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(opts.duration_s)
    stop.set()
    for thread in threads:
        thread.join(60)
    wall = time.monotonic() - started
    after = {t: cluster.cpu(t) for t in targets}
    every = [value for row in latencies for value in row]
    return {
        "targets": targets,
        "requests": len(every),
        "requests_per_s": round(len(every) / wall, 1),
        "errors": sum(errors),
        "latency_ms": latency_summary(every),
        "cpu_percent": {t: round(cpu_percent(before[t], after[t]), 1) for t in targets},
    }
