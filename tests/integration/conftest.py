"""The started 4-node in-process cluster (tests/cluster.py) that integration tests share.

Two fixtures, one setup:

* ``cluster``: a cluster for one test, stopped after it;
* ``module_cluster``: one cluster for a whole module, for modules whose tests only
  read it or add records to it. Such a module runs its tests in the module's event
  loop (``pytestmark = pytest.mark.asyncio(loop_scope="module")``) and seeds the
  cluster, if it needs records, in a module fixture of its own built on this one.

Options come from a ``cluster`` mark on the test or the module, as keyword arguments
of ``Cluster`` (``consensus={...}``), plus ``on_disk=True`` for LevelDB stores in a
temporary directory instead of memory::

    pytestmark = pytest.mark.cluster(on_disk=True)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.cluster import Cluster


def _options(node: pytest.Item | pytest.Collector) -> dict[str, Any]:
    mark = node.get_closest_marker("cluster")
    return dict(mark.kwargs) if mark is not None else {}


@asynccontextmanager
async def _running(
    options: dict[str, Any], directory: Callable[[], Path]
) -> AsyncIterator[Cluster]:
    on_disk = options.pop("on_disk", False)
    cluster = Cluster(4, data_root=directory() if on_disk else None, **options)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


@pytest_asyncio.fixture
async def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    async with _running(_options(request.node), lambda: tmp_path_factory.mktemp("stores")) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def module_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    async with _running(_options(request.node), lambda: tmp_path_factory.mktemp("stores")) as c:
        yield c
