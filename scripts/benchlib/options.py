"""The benchmark's settings, checked once from the command line."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Options:
    duration_s: float  # measurement window of a load scenario
    warmup_s: float  # load runs this long before the window opens
    workdir: Path  # one sub-folder per scenario, wiped at its start
    keep: bool  # keep the pre-signed bodies after a load scenario
    processes: int  # signing workers
    connections: int  # wrk connections per node, single-record POSTs
    batch: int  # envelopes per batch POST
    batch_connections: int  # wrk connections per node, batch POSTs
    half_batch: int  # envelopes per POST of the rate-limited senders
    rate: float | None  # records/s for n4-half (default: half of n4-batch)
    probe_interval_s: float  # one latency probe every this often
    probe_wait_s: float  # long-poll limit of a probe (node caps it at 60 s)
    drain_s: float  # after the load, wait this long at most for mempools to empty
    sizing_rate: float | None  # records/s to pre-sign for (default: the bound)
    catchup_records: int
    read_records: int
    read_requests: int
    block_records: int  # records per pre-built block
    rebuild: bool  # rebuild the read-path chain even if cached
    profile_s: float  # py-spy the first node this long (0: no profile)
    verify_s: float  # how long to time Ed25519 verification
    quick: bool
    log: Callable[[str], None]
    profile_state: str | None = None  # the node to py-spy (None: the first)
    visibility: str = "consortium"  # load scenarios' acts: in clear, or "parties" (private)
    wan_rate: float = 200.0  # records/s offered in the WAN scenarios
    wan_delay_ms: float = 50.0  # one-way delay of every P2P link in them
    wan_jitter_ms: float = 10.0  # plus uniform 0..this per chunk
    anchor: bool = True  # run etcd after each saturating load scenario (anchor.py)

    def scenario_dir(self, name: str) -> Path:
        """A fresh folder for ``name`` (node data of an earlier run is removed)."""
        path = self.workdir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path
