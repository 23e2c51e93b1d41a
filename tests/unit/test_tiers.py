"""The tier of every test directory, and the rule that a skip under CI is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers import FAST_DIRS, SLOW_DIRS, TESTS, tier_of

ROOT = TESTS.parent


def test_fast_directories_are_fast_unless_marked_slow() -> None:
    assert [tier_of(d, False) for d in ("unit", "property")] == ["fast", "fast"]
    assert [tier_of(d, True) for d in ("unit", "property")] == ["slow", "slow"]


def test_the_other_directories_are_slow_however_marked() -> None:
    for directory in ("integration", "fault", "wholesim"):
        assert (tier_of(directory, False), tier_of(directory, True)) == ("slow", "slow")


def test_a_new_test_directory_must_be_given_a_tier() -> None:
    with pytest.raises(ValueError, match=r"tests/benchmarks has no tier"):
        tier_of("benchmarks", False)


def test_every_directory_with_tests_has_exactly_one_tier() -> None:
    with_tests = {p.parent.relative_to(TESTS).parts[0] for p in TESTS.rglob("test_*.py")}
    assert with_tests == FAST_DIRS | SLOW_DIRS
    assert not FAST_DIRS & SLOW_DIRS


SUITE = """
import pytest

def test_passes():
    pass

def test_skips_at_run_time():
    pytest.skip("needs a tool that is not here")

@pytest.mark.skipif(True, reason="the tool is absent")
def test_skipped_by_mark():
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.tiers", "-p", "no:cacheprovider", "-rA"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_outside_ci_a_skip_is_a_skip(tmp_path: Path) -> None:
    run = _run(tmp_path, ci=None)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in run.stdout


def test_under_ci_a_skip_is_a_failure_that_says_why(tmp_path: Path) -> None:
    run = _run(tmp_path, ci="true")
    assert run.returncode == 1, run.stdout
    # a skip at run time fails the test; a skip mark fails its setup (an error)
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in run.stdout
    assert "FAILED test_suite.py::test_skips_at_run_time" in run.stdout
    assert "ERROR test_suite.py::test_skipped_by_mark" in run.stdout
    assert "skipped under CI=true" in run.stdout and "the tool is absent" in run.stdout
