"""The New act form's checks (api/console/static/js/schemaform.js) against ledger/acts.py.

For every act type of ``GET /v1/schemas``, the template ``comity act new`` prints
(completed as ``comity submit`` completes it) must pass the browser's checks, as it
passes ``validate_act``; and each hostile edit below that ``validate_act`` refuses must
be refused in the browser on the field Python names. Run under ``node --test``;
skipped only when ``node`` is missing (under CI a skip fails the run).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger.acts import MODELS, json_schemas, validate_act
from ledger.acts_fields import CATALOGUE_LATEST
from ledger.acts_templates import template
from ledger.errors import RecordInvalid
from node.authoring import complete_record
from tests.nodetest import needs_node, run_node_tests

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "api" / "console" / "static"
pytestmark = needs_node

Edit = Callable[[dict[str, Any]], None]


def _set(name: str, value: Any) -> Edit:
    return lambda r: r.__setitem__(name, value)


def _drop(name: str) -> Edit:
    return lambda r: r.pop(name, None)


def _nested(name: str, key: str, value: Any) -> Edit:
    def edit(record: dict[str, Any]) -> None:
        inner = record.get(name)
        if isinstance(inner, dict):
            inner[key] = value
        elif isinstance(inner, list) and inner and isinstance(inner[0], dict):
            inner[0][key] = value

    return edit


def _edits(record: dict[str, Any], schema: dict[str, Any]) -> dict[str, tuple[Edit, str | None]]:
    out: dict[str, tuple[Edit, str | None]] = {
        "an unknown field": (_set("zzz_unknown", 1), "unknown_field"),
        "a case_ref with a space": (_set("case_ref", "CASE 1"), "pattern"),
        "no territorial state": (_set("territorial_states", []), "min_items"),
        "a lower-case state": (_set("territorial_states", ["th"]), "pattern"),
        "a bad nonce": (_set("nonce", "short"), "pattern"),
        "a time without Z": (_set("occurred_at", "2026-12-04T03:53:55"), "pattern"),
        "an agency of 201 characters": (_nested("actor", "agency", "x" * 201), "max_length"),
        "a ref that is not hex": (_set("refs", ["zz"]), "pattern"),
        "evidence with a short hash": (_set("evidence", [{"sha256": "00"}]), "pattern"),
    }
    for name in schema.get("required", []):
        if name not in ("schema", "type"):
            out[f"no {name}"] = (_drop(name), "required")
    for name, value in record.items():
        if isinstance(value, dict) and "name" in value:
            out[f"{name} with an empty name"] = (_nested(name, "name", ""), "min_length")
        if isinstance(value, str) and name.endswith("_sha256"):
            out[f"{name} in upper case"] = (_set(name, value.upper()), "pattern")
        if isinstance(value, int) and not isinstance(value, bool):
            out[f"{name} as text"] = (_set(name, str(value)), None)
    return out


def _cases() -> dict[str, Any]:
    schemas = json_schemas(CATALOGUE_LATEST)["types"]
    valid: dict[str, Any] = {}
    refused: list[dict[str, Any]] = []
    for i, name in enumerate(sorted(MODELS)):
        record = complete_record(
            template(name, state="CN", territorial_states=("TH",)),
            chain_id="comity-devnet",
        )
        record["nonce"] = f"{i:032x}"
        validate_act(record)
        valid[name] = record
        for label, (edit, rule) in _edits(record, schemas[name]).items():
            changed = copy.deepcopy(record)
            edit(changed)
            if changed == record:
                continue
            try:
                validate_act(changed)
            except RecordInvalid as exc:
                refused.append(
                    {
                        "type": name,
                        "edit": label,
                        "record": changed,
                        "field": exc.field,
                        "rule": rule,
                    }
                )
    return {"schemas": schemas, "valid": valid, "refused": refused, "types": len(MODELS)}


def test_the_form_checks_agree_with_the_act_models(tmp_path: Path) -> None:
    tests = (ROOT / "tests" / "js" / "forms").glob("*.test.mjs")
    run_node_tests(tests, _cases(), tmp_path, "COMITY_FORM_CASES", passes=4)


def test_every_rule_the_form_reports_has_a_message_naming_the_field() -> None:
    source = (STATIC / "js" / "schemaform.js").read_text()
    rules = set(re.findall(r'add\([^,]+, "(\w+)"', source)) | set(
        re.findall(r'rule: "(\w+)"', source + (STATIC / "js" / "newact.js").read_text())
    )
    assert {"required", "pattern", "min_items", "unknown_field", "server", "not_json"} <= rules
    for lang in ("en", "fr", "es", "zh", "ar"):
        strings = json.loads((STATIC / "i18n" / f"{lang}.json").read_text())
        for rule in rules:
            assert "{field}" in strings[f"newact.rule.{rule}"], (lang, rule)
