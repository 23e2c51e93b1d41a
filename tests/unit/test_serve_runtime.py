"""A node process tunes its interpreter (node/serve.py ``tune_runtime``)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from node import serve


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("restored")
def test_a_node_process_collects_full_generations_rarely() -> None:
    gc.set_threshold(700, 10, 10)               # CPython's defaults
    serve.tune_runtime()
    assert gc.get_threshold() == serve.GC_THRESHOLDS
    young, middle, old = serve.GC_THRESHOLDS
    # Full collections walk the whole heap: they must be far rarer than with the
    # defaults (every 700 * 10 * 10 allocations), and young ones not disabled.
    assert young > 0 and young * middle * old >= 100 * 700 * 10 * 10
    assert sys.getswitchinterval() == pytest.approx(serve.SWITCH_INTERVAL_S)
