"""The console's vocabulary is the catalogue's, translated (issue 21, docs/CONSOLE.md
"The vocabulary").

Every identifier the console can show (an act type, a field name, an enum value of a
field, an instrument, a ground, a sovereignty answer, a lifecycle phase, a custody action,
a deadline clock) is derived here from the Python catalogue, never from a hand list: the
act models' JSON schemas (what ``GET /v1/schemas`` serves), ``ledger/instruments.py``,
``ledger/acts_grounds.py``, ``ledger/acts_lifecycle.py``, ``ledger/acts_custody.py`` and
``node/deadlines.py``. Each must have its key ``vocab.<kind>.<identifier>`` in en.json, and
every key of en.json must be in fr, es, zh and ar, translated (not left empty). The kind of
an enum field's values is vocab.js's own ``ENUM_KINDS`` table, read from the module, so the
test and the page cannot disagree.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_type_hints

from api.routers import governance as governance_routes
from consensus.messages import PRECOMMIT, PREVOTE
from ledger import acts_custody, acts_grounds, acts_lifecycle, instruments, private
from ledger.acts import MODELS
from node import deadlines, evidence, govtypes

STATIC = Path(__file__).resolve().parents[2] / "api" / "console" / "static"
LANGUAGES = ("fr", "es", "zh", "ar")
#: Fields whose values the console never shows: the envelope's version, filled in by sign.js.
NOT_SHOWN = frozenset({"schema"})


def _translations(lang: str) -> dict[str, str]:
    data = json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _enum_kinds() -> dict[str, str]:
    """vocab.js's ENUM_KINDS: the kind of an enum field's values, by the field's name."""
    text = (STATIC / "js" / "vocab.js").read_text(encoding="utf-8")
    block = re.search(r"const ENUM_KINDS = \{(.*?)\};", text, re.S)
    assert block, "vocab.js has no ENUM_KINDS table"
    kinds = dict(re.findall(r"^\s*(\w+): \"(\w+)\",$", block.group(1), re.M))
    assert kinds["response"] == "answer" and kinds["ground"] == "ground"
    return kinds


def _walk(
    schema: Any, defs: dict[str, Any], name: str | None, seen: tuple[str, ...]
) -> Iterator[tuple[str, str | None, Any]]:
    """(field name, None, None) for every property and (field name, "enum", value) for
    every enum or const value, through $refs (each followed once on a path)."""
    if isinstance(schema, list):
        for item in schema:
            yield from _walk(item, defs, name, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = ref.rsplit("/", 1)[-1]
        if target not in seen:
            yield from _walk(defs.get(target, {}), defs, name, (*seen, target))
    if name is not None:
        for value in schema.get("enum", []):
            yield name, "enum", value
        if "const" in schema:
            yield name, "enum", schema["const"]
    for key, sub in (schema.get("properties") or {}).items():
        yield key, None, None
        yield from _walk(sub, defs, key, seen)
    for key in ("anyOf", "oneOf", "allOf", "items", "additionalProperties", "prefixItems"):
        if key in schema:
            yield from _walk(schema[key], defs, name, seen)


def catalogue_terms() -> set[tuple[str, str]]:
    """Every (kind, identifier) the console can show, from the catalogue."""
    kinds = _enum_kinds()
    terms: set[tuple[str, str]] = {("type", t) for t in MODELS}
    terms.add(("type", private.HEADER_TYPE))  # a private act's header (ledger/private.py)
    for model in MODELS.values():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        for field, what, value in _walk(schema, schema.get("$defs", {}), None, ()):
            if what is None:
                terms.add(("field", field))
            elif isinstance(value, str) and field not in NOT_SHOWN:
                # (a boolean const, ``accepted: true``, is no term)
                terms.add((kinds.get(field, "value"), value))
    terms |= {("instrument", i.id) for i in instruments.INSTRUMENTS}
    terms |= {("ground", g) for g in acts_grounds.GROUNDS}
    terms |= {("phase", p) for p in acts_lifecycle.LIFECYCLE_PHASES}
    terms |= {("phase", p) for p in acts_lifecycle.EPOC_PR_PHASES}
    terms |= {("action", a) for nexts in acts_custody.TRANSITIONS.values() for a in nexts}
    terms |= {("status", s) for finals in acts_lifecycle.FINAL_STATUSES.values() for s in finals}
    terms |= {("clock", c) for c in deadlines.CLOCK_IDS}
    # The read side's sovereignty status of a state that has not answered (an act's
    # ``sovereignty`` map): the one answer value that is not an act's ``response``.
    if '"pending"' in inspect.getsource(evidence.sovereignty_status):
        terms.add(("answer", "pending"))
    # Governance, as the Chain view shows it: a member proposal's actions, the statuses
    # GET /v1/proposals filters by, and the kinds of message a misbehaviour report names.
    terms |= {("proposal", a) for a in govtypes.ACTIONS}
    status = get_type_hints(governance_routes.proposals)["status"]
    outcomes = [a for arg in get_args(status) for a in get_args(arg)]
    assert outcomes, "GET /v1/proposals' status is no Literal"
    terms |= {("outcome", o) for o in outcomes}
    terms |= {("slot", k) for k in ("proposal", PREVOTE, PRECOMMIT)}
    return terms


def test_the_catalogue_is_read_not_listed() -> None:
    terms = catalogue_terms()
    # Spot checks that the derivation reaches each source (a broken walk finds nothing).
    assert {
        ("type", "preservation_request"),
        ("field", "case_ref"),
        ("field", "legal_basis"),
        ("answer", "objected"),
        ("ground", "territoriality"),
        ("instrument", "eu_epoc"),
        ("phase", "pending_mla_decision"),
        ("phase", "production_confirmed"),
        ("action", "transferred"),
        ("status", "partially_executed"),
        ("clock", "epoc_transmission"),
        ("value", "subscriber"),
        ("answer", "pending"),
        ("proposal", "add_observer"),
        ("outcome", "expired"),
        ("slot", "precommit"),
    } <= terms
    assert len({i for k, i in terms if k == "type"}) == len(MODELS) + 1


def test_every_catalogue_identifier_has_a_key_in_en() -> None:
    en = _translations("en")
    missing = sorted(
        f"vocab.{kind}.{ident}"
        for kind, ident in catalogue_terms()
        if f"vocab.{kind}.{ident}" not in en
    )
    assert not missing, f"identifiers without a key in en.json: {missing}"


def test_no_stale_vocabulary_key() -> None:
    """A key for an identifier the catalogue no longer has is dead weight for translators."""
    en = _translations("en")
    known = {f"vocab.{kind}.{ident}" for kind, ident in catalogue_terms()}
    stale = sorted(k for k in en if k.startswith("vocab.") and k not in known)
    assert not stale, f"vocab keys of no catalogue identifier: {stale}"


def test_every_en_key_is_translated_in_every_language() -> None:
    en = _translations("en")
    for lang in LANGUAGES:
        other = _translations(lang)
        missing = sorted(set(en) - set(other))
        assert not missing, f"{lang}.json lacks {missing}"
        empty = sorted(k for k in en if not str(other[k]).strip())
        assert not empty, f"{lang}.json leaves {empty} empty"


def test_a_vocabulary_label_is_translated_not_copied() -> None:
    """A French, Spanish, Chinese or Arabic label that is the English one word for word is
    a term left untranslated (proper names aside: those keep the same spelling)."""
    en = _translations("en")
    same_allowed = {
        "vocab.instrument.eu_epoc",
        "vocab.value.e_codex",
        "vocab.value.interpol",
        "vocab.value.eedes",
        "vocab.value.dns",
    }
    for lang in ("zh", "ar"):
        other = _translations(lang)
        copied = sorted(
            k
            for k in en
            if k.startswith("vocab.") and k not in same_allowed and other.get(k) == en[k]
        )
        assert not copied, f"{lang}.json copies the English of {copied}"
