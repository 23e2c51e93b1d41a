"""The regions of loopback ports the suite's node processes use, one per kind of test net.

Each region is dealt out per pytest-xdist worker (``devnet.find_lane_base_port``), so two
workers never pick the same block; all sit below 32768, where Linux's ephemeral ports
begin, and apart from ``scripts/bench``'s regions (nodes 26000–30799,
scripts/benchlib/cluster.py; the etcd anchor 30800–32599, scripts/benchlib/anchor.py).
"""

from __future__ import annotations

from api.cli import devnet

REGIONS = {  # name: (first port, blocks of devnet.PORT_BLOCK)
    "procnet": (10000, 40),  # 10000–17999
    "opsnet": (18000, 20),  # 18000–21999
    "ops_docs": (22000, 20),  # 22000–25999
}


def free_base(nodes: int, region: str) -> int:
    start, slots = REGIONS[region]
    return devnet.find_lane_base_port(nodes, start, slots)
