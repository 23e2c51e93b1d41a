"""Sampling profiles of a running node with py-spy, summarised as text.

py-spy attaches to the node's pid from outside (as root, or with ptrace
allowed) and samples its Python stacks; ``--nonblocking`` does not pause the
process, so the profiled node runs at (nearly) full speed. The raw output is
"frame;frame;...;leaf count" per distinct stack (collapsed stacks), which
``summarise`` turns into the top functions by self and by total samples and
which flamegraph tools read as they are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_LINE = re.compile(r":\d+\)$")
ROOT = str(Path(__file__).resolve().parents[2]) + "/"  # the checkout the nodes run from
PROJECT_PACKAGES = ("ledger", "consensus", "node", "api")


def pyspy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path, rate_hz: int = 100) -> subprocess.Popen[bytes]:
    exe = pyspy_path()
    if exe is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate_hz),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _function(frame: str) -> str:
    # "handle (node/driver.py:123)" -> "handle (node/driver.py)": lines of one
    # function are summed; site-packages paths are cut to the package.
    name = _LINE.sub(")", frame.strip())
    return name.replace(ROOT, "").split("site-packages/")[-1]


def _is_project(name: str) -> bool:
    return any(f"({package}/" in name for package in PROJECT_PACKAGES)


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self samples (any code), by total samples (project code
    only: the runpy/click/uvicorn frames under everything say nothing), and
    by entry point: the outermost project frame of each stack, which tells
    which path (API ingress, P2P intake, driver, sync) spends the time."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    entry_counts: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";")]
        samples += count
        self_counts[frames[-1]] += count
        project = [
            name
            for name in frames
            if _is_project(name)
            and not name.endswith("(api/cli/main.py)")
            and not name.endswith("(api/serve.py)")
        ]
        entry_counts[project[0] if project else "(no project frame)"] += count
        for name in set(project):  # a recursive function counts once per sample
            total_counts[name] += count

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {
                "function": name,
                "samples": n,
                "percent": round(100 * n / samples, 1) if samples else 0.0,
            }
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": samples,
        "file": str(raw),
        "by_self": rows(self_counts),
        "by_total": rows(total_counts),
        "by_entry": rows(entry_counts),
    }
