"""Deadlines moved to ``node/deadlines.py``, one engine over a table of clocks.

This module keeps the old import path working for callers written before it.
"""

from __future__ import annotations

from node.deadlines import UNANSWERED_DAYS_DEFAULT, WITHIN_DAYS_MAX, deadlines

__all__ = ["UNANSWERED_DAYS_DEFAULT", "WITHIN_DAYS_MAX", "deadlines"]
