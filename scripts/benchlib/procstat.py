"""CPU time and memory of a process from /proc (Linux only).

CPU is read as utime + stime of /proc/<pid>/stat (all threads of the
process), so CPU% over a window is the tick delta over the wall time; 100 %
is one core. Peak RSS is the kernel's high-water mark VmHWM, which needs no
sampling to catch a short spike.

A node's figures include its child processes (the signature workers of
node/verifier.py): CPU is summed, and so is memory, which therefore counts
pages the children share with the node (copy-on-write after the fork) twice:
an upper bound, never an understatement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSample:
    seconds: float  # CPU seconds used so far (user + system)
    at: float  # time.monotonic() when read


def family(pid: int) -> list[int]:
    """``pid`` and its child processes (one level: nodes do not nest further)."""
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                children += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return [pid, *children]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children; 0.0 if gone."""
    return sum(_cpu_seconds(p) for p in family(pid))


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            text = handle.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces or parentheses: split after
    # the last ')'. Then utime and stime are fields 14 and 15 of the line.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _status_kib(pid: int, name: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mib(pid: int) -> float:
    return sum(_status_kib(p, "VmHWM") for p in family(pid)) / 1024


def rss_mib(pid: int) -> float:
    return sum(_status_kib(p, "VmRSS") for p in family(pid)) / 1024


def cpu_percent(first: CpuSample, last: CpuSample) -> float:
    wall = last.at - first.at
    return 0.0 if wall <= 0 else 100.0 * (last.seconds - first.seconds) / wall
