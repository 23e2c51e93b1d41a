"""The test tiers and the CI skip rule, as pytest hooks (tests/conftest.py loads them).

Two tiers, selected with ``-m``: ``fast`` (tests/unit and tests/property, in
one process and in well under two minutes: ``scripts/test --fast``) and
``slow`` (everything else: the in-process clusters, real processes, faults and
simulations). A test is in its directory's tier; a fast-directory test marked
``slow`` by hand moves to the slow tier. Every test gets exactly one of the two
marks, so ``-m fast`` and ``-m slow`` split the suite with nothing left over,
and a test directory this module does not know is a collection error rather
than a test no tier runs.

Under CI (``CI=true``) a skip is a failure: scripts/test installs every tool
the suite uses (openssl, jq, xxd, wrk, iproute2), so a test that skips there
has lost what it checks without anyone seeing it.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FAST_DIRS = frozenset({"unit", "property"})
SLOW_DIRS = frozenset({"integration", "fault", "wholesim"})


def tier_of(directory: str, marked_slow: bool) -> str:
    """The tier of a test in ``tests/<directory>``."""
    if directory in FAST_DIRS:
        return "slow" if marked_slow else "fast"
    if directory in SLOW_DIRS:
        return "slow"
    raise ValueError(
        f"tests/{directory} has no tier: add it to FAST_DIRS or SLOW_DIRS in tests/tiers.py"
    )


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.resolve()
        if not path.is_relative_to(TESTS):
            continue  # a suite outside tests/ (pytest's own tests of these hooks)
        parts = path.relative_to(TESTS).parts
        directory = parts[0] if len(parts) > 1 else "."
        try:
            tier = tier_of(directory, item.get_closest_marker("slow") is not None)
        except ValueError as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
        item.add_marker(tier)


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            "skipped under CI=true, which must run every test "
            f"(scripts/test installs the tools it needs): {reason}"
        )
    return report
