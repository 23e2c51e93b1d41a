#!/usr/bin/env python3
"""Measure the path of one record from POST to commit to query, in module hops.

docs/ARCHITECTURE.md draws the path; this script counts it on the real code, so
the figure can be compared across commits. An in-process consortium of four
nodes (tests/cluster.py: real ``Node`` objects over ASGI transports, no
sockets) is started and left idle; then a profiler (``sys.setprofile`` on
every thread) records each call whose caller and callee are functions of
Comity's packages (ledger, consensus, node, api) in different modules, while

1. an investigator's envelope is POSTed to one node's ``/v1/records``,
2. every node commits it, and
3. ``GET /v1/records/{id}`` and ``GET /v1/records/{id}/proof`` answer.

The same profiler runs over an idle window of the same length first; the
modules and edges seen there (status polling, rebroadcast ticks) are the
node's background and are subtracted. What is left is the record's path:

- *modules*: package modules that run on the path;
- *hops*: distinct (caller module -> callee module) call edges on the path.

Usage: scripts/record_path.py [--json] [--list]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster import Cluster  # noqa: E402

PACKAGES = ("ledger", "consensus", "node", "api")


def module_of(filename: str) -> str | None:
    """``ledger/merkle.py`` for a file of the packages, else None."""
    try:
        relative = Path(filename).resolve().relative_to(ROOT)
    except ValueError:
        return None
    return relative.as_posix() if relative.parts[0] in PACKAGES else None


class Recorder:
    """Cross-module call edges between package functions, from a profile hook."""

    def __init__(self) -> None:
        self.edges: set[tuple[str, str]] = set()
        self.modules: set[str] = set()
        self._names: dict[str, str | None] = {}

    def _module(self, frame: FrameType | None) -> str | None:
        if frame is None:
            return None
        filename = frame.f_code.co_filename
        if filename not in self._names:
            self._names[filename] = module_of(filename)
        return self._names[filename]

    def hook(self, frame: FrameType, event: str, _arg: object) -> None:
        if event != "call":
            return
        callee = self._module(frame)
        if callee is None:
            return
        self.modules.add(callee)
        # The nearest package frame up the stack is the caller (library frames between
        # them, e.g. FastAPI's dispatch or asyncio's scheduling, are not hops).
        caller_frame = frame.f_back
        while caller_frame is not None and self._module(caller_frame) is None:
            caller_frame = caller_frame.f_back
        caller = self._module(caller_frame)
        if caller is not None and caller != callee:
            self.edges.add((caller, callee))


def profiled(recorder: Recorder) -> tuple[Callable[[], None], Callable[[], None]]:
    def on() -> None:
        threading.setprofile(recorder.hook)
        sys.setprofile(recorder.hook)

    def off() -> None:
        sys.setprofile(None)
        threading.setprofile(None)

    return on, off


async def measure() -> dict[str, Any]:
    cluster = Cluster(4)
    await cluster.start()
    try:
        await cluster.wait_height(0)
        await asyncio.sleep(1.0)  # let start-up settle: peers polled, rounds idle
        envelope = cluster.envelope("CN")
        first = cluster.states[0]

        idle = Recorder()
        on, off = profiled(idle)
        started = time.monotonic()
        on()
        await asyncio.sleep(2.0)
        off()
        idle_s = time.monotonic() - started

        path = Recorder()
        on, off = profiled(path)
        height = max(n.app.height for n in cluster.nodes.values())
        started = time.monotonic()
        on()
        answer = await cluster.api[first].post("/v1/records", json=envelope)
        record_id = answer.json()["id"]
        await cluster.wait_height(height + 1)
        got = await cluster.api[first].get(f"/v1/records/{record_id}")
        proof = await cluster.api[first].get(f"/v1/records/{record_id}/proof")
        off()
        path_s = time.monotonic() - started
        if answer.status_code != 202 or got.status_code != 200 or proof.status_code != 200:
            raise SystemExit(
                f"path failed: {answer.status_code} {got.status_code} {proof.status_code}"
            )
    finally:
        await cluster.stop()
    modules = sorted(path.modules - idle.modules)
    edges = sorted(path.edges - idle.edges)
    return {
        "modules": len(path.modules),
        "hops": len(path.edges),
        "background_modules": len(idle.modules),
        "background_hops": len(idle.edges),
        "path_only_modules": len(modules),
        "path_only_hops": len(edges),
        "path_s": round(path_s, 2),
        "idle_s": round(idle_s, 2),
        "module_list": sorted(path.modules),
        "edge_list": [f"{a} -> {b}" for a, b in sorted(path.edges)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--list", action="store_true", help="list the modules and edges")
    args = parser.parse_args()
    result = asyncio.run(measure())
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"modules on the path of one record: {result['modules']}")
    print(f"module hops (distinct caller -> callee module edges): {result['hops']}")
    print(
        f"of which outside the idle background: {result['path_only_modules']} modules, "
        f"{result['path_only_hops']} hops"
    )
    if args.list:
        print("\n".join(result["module_list"]))
        print("\n".join(result["edge_list"]))


if __name__ == "__main__":
    main()
