"""Citations of the project's docs point at text that exists.

Comments, docstrings and docs cite the docs by file and section:
``docs/CONSENSUS.md "Persist before send"`` (a heading, quoted),
``docs/PROTOCOL.md §7-§9`` or ``docs/OPERATIONS.md section 6`` (numbered
headings such as ``## 7. Blocks``). A cited file must exist, and so must every
quoted heading (case-insensitive, as a markdown heading outside code fences)
and every section number. The project's internal notes are not in the repo,
so a bare mention of one of them (``DOMAIN.md`` without ``docs/``) fails too:
what matters of them lives in docs/.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("ledger", "consensus", "node", "api", "scripts", "tests")
#: Internal notes outside the repo; their content was brought into docs/ under these names.
NOTES = ("DOMAIN", "TENDERMINT", "DESIGN", "STYLE")

_NAME = re.compile(r"(?<![\w.-])((?:[\w.-]*/)*)([A-Z][A-Z0-9_]*)\.md\b")
# After the file: optional possessive or comma, then white space (so ``"X.md"`` in code is a
# string, not a citation), optional "(", then quoted headings joined by commas.
_QUOTED = re.compile(
    r"""(?:'s)?,?(?=\s)\s*(?:#:?\s*)?\(?("[^"]{1,120}"(?:,\s*(?:#:?\s*)?"[^"]{1,120}")*)"""
)
_HEADING_TEXT = re.compile(r'"([^"]+)"')
_SECTIONS = re.compile(
    r"[ \t]*(?:§|sections?[ \t]+)(\d+)((?:\s*(?:[-–]|,|and)\s*§?\d+)*)", re.IGNORECASE
)
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def _squash(text: str) -> str:
    """One heading as cited across a line break: drop comment markers, collapse spaces."""
    text = re.sub(r"\n[ \t]*(?:#:?)?[ \t]*", " ", text)
    return " ".join(text.split()).casefold()


@cache
def headings(path: Path) -> frozenset[str]:
    """The headings of a markdown file, outside fenced code, case-folded."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for heading in map(_squash, _HEADING.findall(text)):
        short = re.sub(r"^\d+\.\s+", "", heading)  # "6. deadlines" is cited as "deadlines"
        names |= {heading, short, re.sub(r"\s+\([^)]*\)$", "", short)}  # and without "(...)"
    return frozenset(names)


def _section_numbers(first: str, rest: str) -> list[int]:
    numbers = [int(first)]
    for sep, num in re.findall(r"\s*([-–]|,|and)\s*§?(\d+)", rest):
        if sep in "-–":
            numbers.extend(range(numbers[-1] + 1, int(num) + 1))
        else:
            numbers.append(int(num))
    return numbers


def _resolve(prefixed: bool, name: str, root: Path) -> Path | None:
    """The docs file a mention names, or None for a bare name that is no doc of ours."""
    for candidate in (root / "docs" / f"{name}.md", root / f"{name}.md"):
        if candidate.is_file() and (not prefixed or candidate.parent.name == "docs"):
            return candidate
    return None


def problems(text: str, where: str, root: Path = ROOT) -> list[str]:
    """Every citation in ``text`` that points at a missing file, heading or section."""
    found: list[str] = []
    for match in _NAME.finditer(text):
        folder, name = match.group(1), match.group(2)
        prefixed = folder == "docs/"
        line = text.count("\n", 0, match.start()) + 1
        cited = f"{where}:{line}: {match.group(0)}"
        if name in NOTES and not prefixed:
            found.append(f"{cited}: {name}.md is not in the repo; cite docs/{name}.md")
            continue
        if folder and not prefixed:
            continue  # a path to some other file (docker/README.md), not a doc citation
        path = _resolve(prefixed, name, root)
        if path is None:
            if prefixed:
                found.append(f"{cited}: no such file")
            continue
        tail = text[match.end() : match.end() + 400]
        known = headings(path)
        quoted = _QUOTED.match(tail)
        for heading in _HEADING_TEXT.findall(quoted.group(1)) if quoted else ():
            if _squash(heading) and _squash(heading) not in known:
                found.append(f'{cited}: no heading "{_squash(heading)}" in {path.name}')
        sections = _SECTIONS.match(tail)
        for number in _section_numbers(*sections.groups()) if sections else ():
            if not any(h.startswith(f"{number}.") for h in known):
                found.append(f"{cited}: no section {number} in {path.name}")
    return found


def _cited_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and (path.suffix == ".py" or folder == "scripts"):
                files.append(path)
    return [p for p in files if p != Path(__file__).resolve() and "__pycache__" not in p.parts]


def test_every_citation_points_at_an_existing_doc_heading() -> None:
    found: list[str] = []
    for path in _cited_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a binary file under scripts/ cites nothing
        found.extend(problems(text, str(path.relative_to(ROOT))))
    assert found == [], "\n".join(found)


def test_the_docs_the_code_cites_exist() -> None:
    cited = {"DOMAIN.md", "DESIGN.md", "CONSENSUS.md"}
    assert cited <= {p.name for p in (ROOT / "docs").glob("*.md")}


# --- the checker itself can fail -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('(docs/CONSENSUS.md "Persist before send")', []),
        ('# (docs/CONSENSUS.md "Persist before\n# send")', []),
        ('docs/DESIGN.md\'s\n"Canonical JSON" decision', []),
        ('(docs/DESIGN.md "Block hash",\n"Precommit sign-bytes", "Commit certificate")', []),
        ('docs/DOMAIN.md: "Only an authority of a state may sign"', []),
        ("docs/PROTOCOL.md §7-§9 and docs/OPERATIONS.md section 6", []),
        ("see README.md and docs/ACTS.md", []),
        ('DOC = ROOT / "docs" / "PROTOCOL.md").read_text("utf-8")', []),
        ('"see docs/ACTS.md "\n    "for the rules"', []),
        ('docs/ACTS.md "Deadlines" and docs/OPERATIONS.md "Transport security"', []),
        ('docs/CONSENSUS.md "Whole-node simulation (tests/wholesim)"', []),
        ('docs/CONSENSUS.md "Catching up"', ['no heading "catching up"']),
        ('(docs/CONSENSUS.md "No such heading")', ['no heading "no such heading"']),
        ('(docs/DESIGN.md "Block hash", "Blok hash")', ['no heading "blok hash"']),
        ("docs/PROTOCOL.md §7-§99", ["no section 17", "no section 99"]),
        ('docs/TENDERMINT.md "Model"', ["no such file"]),
        ("docs/NOWHERE.md", ["no such file"]),
        ('(TENDERMINT.md "Model")', ["TENDERMINT.md is not in the repo"]),
        ("the subset DESIGN.md fixes", ["DESIGN.md is not in the repo"]),
        ("/work/shared/DOMAIN.md", ["DOMAIN.md is not in the repo"]),
    ],
)
def test_checker_reports_broken_citations(text: str, expected: list[str]) -> None:
    found = problems(text, "x.py")
    if not expected:
        assert found == []
    for fragment in expected:
        assert any(fragment in problem for problem in found), (fragment, found)
    if expected and not expected[0].startswith("no section"):
        assert len(found) == len(expected)


def test_heading_match_ignores_case_and_code_fences(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "X.md").write_text("# Title\n\n## Real Heading\n\n```sh\n# Fake heading\n```\n")
    assert problems('docs/X.md "real heading"', "y.py", tmp_path) == []
    assert problems('docs/X.md "Fake heading"', "y.py", tmp_path) == [
        'y.py:1: docs/X.md: no heading "fake heading" in X.md'
    ]
