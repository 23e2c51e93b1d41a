"""Suite-wide hooks: the fast and slow tiers, and no silent skips under CI (tests/tiers.py)."""

from tests.tiers import pytest_collection_modifyitems, pytest_runtest_makereport

__all__ = ["pytest_collection_modifyitems", "pytest_runtest_makereport"]
