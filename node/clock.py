"""The node's one wall clock.

Every reading of the wall clock in the packages goes through this module, as
``clock.utcnow()`` or ``clock.now_ms()`` (attribute lookups, never imported
names), so there is exactly one seam to replace: the whole-node simulator
(tests/wholesim/vloop.py) points both at virtual time for a run. The
consensus engine never reads a clock; its timeouts come from the driver.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current UTC time, timezone-aware."""
    return datetime.now(UTC)


def now_ms() -> int:
    """Unix time in milliseconds (P2P request timestamps, replay windows)."""
    return time.time_ns() // 1_000_000
