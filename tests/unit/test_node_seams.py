"""The parts ``Node`` wires get narrow collaborators, never the ``Node`` itself.

Each module below is handed only what it uses (node/runtime.py builds them),
so none of them imports ``node.runtime``, not even under ``TYPE_CHECKING`` or
inside a function, and none imports a web framework or ``api``: HTTP lives in
api/ (api/p2p.py, api/metrics.py, api/serve.py). Read with ``ast``, so lazy
imports count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = (
    "admission",
    "driver",
    "evidence",
    "inbound",
    "metrics",
    "queries",
    "sealed_access",
    "sync",
    "wire",
)
FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "sse_starlette", "api")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("part", PARTS)
def test_a_part_of_the_node_does_not_import_the_node(part: str) -> None:
    imports = _imports(ROOT / "node" / f"{part}.py")
    assert "node.runtime" not in imports
    assert "node.runtime.Node" not in imports


def test_node_imports_no_web_framework() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in sorted((ROOT / "node").glob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] in FRAMEWORKS
    }
    assert offenders == set()


def test_the_checks_see_a_lazy_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from node.runtime import Node\n"
        "def f():\n    import starlette.routing\n"
    )
    assert {"node.runtime", "starlette.routing"} <= _imports(probe)
