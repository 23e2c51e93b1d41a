"""The import contract: the package layers, checked over the source, every import counted.

Every ``import`` statement of every module is read with ``ast``: those at the top,
those inside functions (lazy imports) and those under ``if TYPE_CHECKING:`` alike,
because a lazy or type-only import is still a dependency a reader must follow.
The rules (docs/ARCHITECTURE.md, "Layers"):

1. ``ledger`` (the bottom) imports no other Comity package.
2. ``consensus`` (the pure engine) imports ``ledger`` only, and nothing that
   reads a clock, draws randomness or does I/O.
3. ``node`` imports neither ``api`` nor any HTTP framework (FastAPI, Starlette,
   uvicorn, sse-starlette): the runtime can be driven without a server.
4. ``ledger.audit`` (the auditor) imports the standard library, PyNaCl, itself
   and three stdlib-only modules of the bottom layer, and nothing else.
5. No two modules of the packages import each other, directly or round a loop.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "consensus", "node", "api")
HTTP_FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "sse_starlette")
IMPURE = ("asyncio", "time", "random", "secrets", "threading", "socket", "os", "datetime")
AUDITOR_MAY_USE = ("ledger.audit", "ledger.merkle", "ledger.errors", "ledger.quorum", "nacl")
STDLIB_ONLY = ("ledger.merkle", "ledger.errors", "ledger.quorum")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports_of(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, wherever it sits."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from ledger import merkle`` names a module; ``from x import Y`` a member.
                full = f"{base}.{alias.name}"
                yield (full if full in MODULES else base), node.lineno


MODULES = modules()
GRAPH = {name: sorted(set(imports_of(name, path))) for name, path in MODULES.items()}


def top(module: str) -> str:
    return module.split(".")[0]


def is_stdlib(module: str) -> bool:
    return top(module) in sys.stdlib_module_names or module == "__future__"


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def breaches(source_prefix: str, forbidden: Callable[[str], bool]) -> list[str]:
    found = []
    for name, targets in GRAPH.items():
        if not under(name, source_prefix):
            continue
        for target, line in targets:
            if forbidden(target):
                found.append(f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}")
    return found


def test_the_contract_sees_every_package_module() -> None:
    assert {top(name) for name in MODULES} == set(PACKAGES)
    assert "ledger.audit.chain" in MODULES and "node.runtime" in MODULES
    # A lazy import inside a function body is counted (the contract would be blind otherwise).
    lazy = "def f():\n    from node.runtime import Node\n"
    tree = ast.parse(lazy)
    assert any(isinstance(n, ast.ImportFrom) and n.module == "node.runtime" for n in ast.walk(tree))


def test_ledger_imports_no_package_above_it() -> None:
    assert breaches("ledger", lambda t: top(t) in ("consensus", "node", "api")) == []


def test_consensus_imports_only_the_ledger_and_nothing_impure() -> None:
    assert breaches("consensus", lambda t: top(t) in ("node", "api")) == []
    assert breaches("consensus", lambda t: top(t) in IMPURE) == []


def test_node_imports_neither_the_api_nor_an_http_framework() -> None:
    assert breaches("node", lambda t: top(t) in ("api", *HTTP_FRAMEWORKS)) == []


def test_the_auditor_uses_only_the_standard_library_pynacl_and_three_pure_modules() -> None:
    def allowed(target: str) -> bool:
        return is_stdlib(target) or any(under(target, p) for p in AUDITOR_MAY_USE)

    assert breaches("ledger.audit", lambda t: not allowed(t)) == []
    for module in STDLIB_ONLY:
        assert breaches(module, lambda t: not (is_stdlib(t) or under(t, "ledger.errors"))) == []


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    edges = {
        name: sorted({t for t, _ in targets if t in MODULES and t != name})
        for name, targets in GRAPH.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_lazy_and_type_only_imports_included() -> None:
    assert cycles() == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": ["b"], "b": ["a"], "c": []}, [["a", "b"]]),
        ({"a": ["b"], "b": ["c"], "c": []}, []),
    ],
)
def test_the_cycle_finder_finds_a_loop_and_only_a_loop(
    graph: dict[str, list[str]], expected: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sys.modules[__name__], "GRAPH", {k: [(t, 1) for t in v] for k, v in graph.items()}
    )
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {k: ROOT for k in graph})
    assert cycles() == expected
