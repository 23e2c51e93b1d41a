"""Blocks of loopback ports for the nodes a test starts, disjoint between pytest-xdist workers.

A test that starts real node processes picks a block of ports (API ports, then the P2P
ports ``P2P_OFFSET`` above) that is free *now*; the nodes bind it a moment later. Two
workers of one run must never pick the same block in that moment, so a region of
``slots`` blocks of 200 ports is dealt out by slot number modulo the worker count: worker
``gwK`` only ever looks at slots ``≡ K``. The process id spreads concurrent runs (two
pytest runs on one machine) over a worker's slots.
"""

from __future__ import annotations

import os

from api.cli import devnet

BLOCK = 200


def _worker() -> tuple[int, int]:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
    return index % count, count


def free_base(nodes: int, region_start: int, slots: int) -> int:
    """A base port of ``nodes`` free API ports and their P2P ports, in this worker's slots."""
    if nodes > devnet.P2P_OFFSET or 2 * devnet.P2P_OFFSET > BLOCK:
        raise ValueError("a block holds at most P2P_OFFSET nodes")
    index, count = _worker()
    mine = max(1, slots // count)
    for step in range(mine):
        slot = index + count * ((os.getpid() + step) % mine)
        base = region_start + slot * BLOCK
        ports = [base + i for i in range(nodes)]
        ports += [base + devnet.P2P_OFFSET + i for i in range(nodes)]
        if all(devnet.port_free(p) for p in ports):
            return base
    raise RuntimeError(f"no free block of {nodes} ports in this worker's slots from {region_start}")
