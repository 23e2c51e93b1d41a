"""scripts/bench.py --quick --scenario reads-observers: the harness, end to end.

Three observer nodes are admitted, sync the pre-built chain and serve the same
reads as the validator: both runs answer every request (no errors) and the
JSON holds what docs/PERFORMANCE.md reports. No timing is asserted: a 5-second
run on a shared machine means nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_quick_reads_observers_serves_every_read(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--quick",
            "--scenario",
            "reads-observers",
            "--json",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result] = json.loads(proc.stdout)["results"]
    assert result["kind"] == "reads-observers", result.get("error")
    assert result["nodes"] == 4 and result["chain"]["records"] == 2000
    runs = result["runs"]
    assert runs["validator"]["targets"] == ["CN"]
    assert runs["observers"]["targets"] == ["CN-obs1", "CN-obs2", "CN-obs3"]
    for run in runs.values():
        assert run["requests"] > 0 and run["errors"] == 0
        assert set(run["latency_ms"]) >= {"p50", "p95", "p99"}
        assert set(run["cpu_percent"]) == set(run["targets"])
