"""The console's JavaScript tests under Node's test runner, fed with cases made in Python.

Each ``tests/unit/test_console_*.py`` builds its cases with the Python code the browser's
modules must agree with (PyNaCl's verdicts, the CLI's envelopes, the act models, a chain's
replies), writes them to one JSON file named by an environment variable, and runs
``node --test`` over its ``tests/js`` folder. The run must pass with exactly the expected
number of tests and skips, so a test file that stops loading, or a test that starts
skipping, fails here instead of passing unseen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.tiers import under_ci

ROOT = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")
#: The pure-JS Ed25519 the console falls back on, installed by scripts/console-vendor.
VENDOR = ROOT / "api" / "console" / "static" / "vendor" / "noble-ed25519.js"
needs_node = pytest.mark.skipif(NODE is None, reason="node (20+) is not installed")


def vendor_present() -> bool:
    """Whether the vendored fallback is installed; under CI its absence fails the test,
    since scripts/test installs it and its tests must not skip there."""
    if VENDOR.exists():
        return True
    if under_ci():
        pytest.fail(f"{VENDOR.relative_to(ROOT)} is missing: scripts/console-vendor did not run")
    return False


def run_node_tests(
    tests: Iterable[Path],
    cases: Any,
    tmp_path: Path,
    env_name: str,
    *,
    passes: int | None,
    skipped: int = 0,
    env: dict[str, str] | None = None,
) -> str:
    """``node --test`` over ``tests`` with ``cases`` in the file ``$env_name`` names;
    asserts no failure, ``skipped`` skips and (unless None) ``passes`` passes; the output."""
    assert NODE is not None
    files = sorted(str(p) for p in tests)
    assert files, "no JavaScript test file found"
    path = tmp_path / f"{env_name.lower()}.json"
    path.write_text(json.dumps(cases))
    run = subprocess.run(
        [NODE, "--test", *files],
        cwd=ROOT,
        env={**os.environ, env_name: str(path), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout, run.stdout[-2000:]
    assert f"# skipped {skipped}\n" in run.stdout, run.stdout[-2000:]
    if passes is not None:
        assert f"# pass {passes}\n" in run.stdout, run.stdout[-2000:]
    return run.stdout
