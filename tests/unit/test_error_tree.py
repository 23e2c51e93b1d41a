"""The error tree drawn in ledger/errors.py is the real one.

Every exception class defined in a package module must derive from
``ComityError`` and appear in the docstring's drawing under its real parent:
adding an exception without drawing it (or drawing it elsewhere) fails here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

from ledger import errors
from ledger.errors import ComityError

PACKAGES = ("ledger", "consensus", "node", "api")

#: Exceptions that deliberately stay outside the tree, with why. Keep it tiny.
BOUNDARY: dict[str, str] = {}

#: A drawn node: tree prefix (pipes and spaces), a branch mark, then the class name.
_NODE = re.compile(r"^(?P<indent>[ │]*)[├└]── (?P<name>[A-Za-z]+)")


def _modules() -> list[ModuleType]:
    modules = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if info.name.endswith("__main__"):
                continue  # running it is the command line itself
            modules.append(importlib.import_module(info.name))
    return modules


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in _modules():
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                assert name not in found or found[name] is value, (
                    f"two exceptions named {name}: the drawing could not tell them apart"
                )
                found[name] = value
    return found


def _drawing() -> dict[str, str | None]:
    """Class name -> drawn parent name (None for the root) from the docstring."""
    doc = errors.__doc__ or ""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []  # (depth, name)
    margin = 0  # the drawing's indentation in the docstring
    for line in doc.splitlines():
        if line.strip() == "ComityError":
            parents["ComityError"] = None
            stack, margin = [(0, "ComityError")], line.index("C")
            continue
        match = _NODE.match(line[margin:])
        if match is None or not stack:
            continue
        depth = len(match["indent"]) // 4 + 1
        while stack and stack[-1][0] >= depth:
            stack.pop()
        name = match["name"]
        assert name not in parents, f"{name} is drawn twice"
        parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


EXCEPTIONS = _defined_exceptions()


def test_the_walk_finds_the_classes_defined_outside_errors_py() -> None:
    # A guard for the test itself: an import walk that found nothing would pass.
    for name in ("CustodyViolation", "ClientFailure", "FetchError", "VerifierUnavailable"):
        assert name in EXCEPTIONS
    assert len(EXCEPTIONS) >= 40


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_exception_is_in_the_tree(name: str) -> None:
    cls = EXCEPTIONS[name]
    if name in BOUNDARY:
        assert not issubclass(cls, ComityError), f"{name} joined the tree: drop it from BOUNDARY"
        return
    assert issubclass(cls, ComityError), f"{cls.__module__}.{name} is outside the error tree"


@pytest.mark.parametrize("name", sorted(set(EXCEPTIONS) - set(BOUNDARY)))
def test_every_exception_is_drawn_under_its_real_parent(name: str) -> None:
    cls = EXCEPTIONS[name]
    drawn = _drawing()
    assert name in drawn, f"{cls.__module__}.{name} is missing from the ledger/errors.py drawing"
    if cls is ComityError:
        assert drawn[name] is None
        return
    (parent,) = cls.__bases__  # one parent each: the drawing is a tree
    assert drawn[name] == parent.__name__, (
        f"{name} is drawn under {drawn[name]}, but derives from {parent.__name__}"
    )


def test_the_drawing_names_no_class_that_does_not_exist() -> None:
    stale = set(_drawing()) - set(EXCEPTIONS)
    assert not stale, f"drawn but not defined: {sorted(stale)}"


def test_the_drawing_parser_sees_depth() -> None:
    drawn = _drawing()
    assert drawn["RootMismatchError"] == "ProofError"
    assert drawn["ProofError"] == "VerificationError"
    assert drawn["PeerRemoved"] == "PeerUnavailable"
    assert drawn["InvariantViolation"] == "ComityError"


def _narrows_a_type(test: ast.expr) -> bool:
    """``isinstance(x, T)``, ``x is not None``, or ``a and b`` of plain names: what mypy
    narrows on. Anything else is a state check, which ``python -O`` would remove."""
    if isinstance(test, ast.Call):
        return isinstance(test.func, ast.Name) and test.func.id == "isinstance"
    if isinstance(test, ast.Compare):
        return (
            len(test.ops) == 1
            and isinstance(test.ops[0], ast.IsNot)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
        )
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return all(isinstance(v, ast.Name) for v in test.values)
    return False


def test_no_assert_guards_a_state() -> None:
    """Invariants raise InvariantViolation; ``assert`` only narrows a type (errors.py)."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Assert) and not _narrows_a_type(node.test):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, f"asserts that guard a state (use InvariantViolation): {offenders}"


def _test_of(source: str) -> ast.expr:
    statement = ast.parse(source).body[0]
    assert isinstance(statement, ast.Assert)
    return statement.test


def test_the_assert_rule_sees_a_state_check() -> None:
    assert not _narrows_a_type(_test_of("assert height == self.height + 1"))
    assert not _narrows_a_type(_test_of("assert used[0] >= 0 and used[1] >= 0"))
    assert _narrows_a_type(_test_of("assert x is not None"))
    assert _narrows_a_type(_test_of("assert isinstance(header, dict)"))
