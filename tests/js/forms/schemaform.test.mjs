// The New act form's checks (schemaform.js validate) against the Python act models.
// tests/unit/test_console_schemaform.py writes the cases (COMITY_FORM_CASES): every act
// type's schema from GET /v1/schemas with a template ledger/acts.py admits, and hostile
// edits of it with the field ledger/acts.py validate_act names when it refuses them.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { parentField, validate } from "../../../api/console/static/js/schemaform.js";

const path = process.env.COMITY_FORM_CASES;
const cases = path ? JSON.parse(readFileSync(path, "utf8")) : null;
const skip = cases ? false : "run by tests/unit/test_console_schemaform.py (COMITY_FORM_CASES)";

test("every act type's template passes, as ledger/acts.py admits it", { skip }, () => {
  assert.equal(Object.keys(cases.valid).length, cases.types);
  for (const [type, record] of Object.entries(cases.valid)) assert.deepEqual(validate(cases.schemas[type], record), [], type);
});

test("each edit the Python models refuse is refused here, on the field they name", { skip }, () => {
  assert.ok(cases.refused.length > 100);
  for (const c of cases.refused) {
    const problems = validate(cases.schemas[c.type], c.record);
    assert.ok(problems.length, `${c.type} ${c.edit}: not refused`);
    const fields = problems.map((p) => p.field);
    // Pydantic names a bad item of a union at the union, or its member: either is the field.
    const named = fields.some((f) => f === c.field || parentField(f) === c.field || parentField(c.field) === f);
    assert.ok(named, `${c.type} ${c.edit}: Python names ${c.field}, the form ${fields.join(", ")}`);
    if (c.rule) assert.ok(problems.some((p) => p.rule === c.rule), `${c.type} ${c.edit}: expected rule ${c.rule}, got ${problems.map((p) => p.rule)}`);
  }
});

test("the rules and their parameters", { skip }, () => {
  const schema = cases.schemas.preservation_request;
  const base = cases.valid.preservation_request;
  const check = (edit, field, rule, params) => {
    const problems = validate(schema, { ...base, ...edit });
    const hit = problems.find((p) => p.field === field && p.rule === rule);
    assert.ok(hit, `${JSON.stringify(edit)}: ${JSON.stringify(problems)}`);
    if (params) assert.deepEqual(hit.params, params);
  };
  check({ case_ref: "" }, "record.case_ref", "pattern");
  check({ territorial_states: [] }, "record.territorial_states", "min_items", { n: 1 });
  check({ territorial_states: ["th"] }, "record.territorial_states[0]", "pattern");
  check({ data_category: ["everything"] }, "record.data_category[0]", "enum");
  check({ custodian: { name: "x".repeat(201) } }, "record.custodian.name", "max_length", { n: 200 });
  check({ custodian: {} }, "record.custodian.name", "required");
  check({ evidence: [{ sha256: "00", size: -1 }] }, "record.evidence[0].size", "minimum", { n: 0 });
  check({ evidence: [{ sha256: "00" }] }, "record.evidence[0].sha256", "pattern");
  check({ confidential: "yes" }, "record.confidential", "type_boolean");
  check({ type: "mla_request" }, "record.type", "const");
  check({ extra: 1 }, "record.extra", "unknown_field");
  const missing = { ...base };
  delete missing.expires_at;
  assert.ok(validate(schema, missing).some((p) => p.field === "record.expires_at" && p.rule === "required"));
});

test("every pattern of the catalogue compiles as the form uses it (Unicode mode)", { skip }, () => {
  const patterns = new Set();
  const walk = (node) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      if (typeof node.pattern === "string") patterns.add(node.pattern);
      for (const key of Object.keys(node.patternProperties ?? {})) patterns.add(key);
      Object.values(node).forEach(walk);
    }
  };
  walk(cases.schemas);
  assert.ok(patterns.size >= 5);
  for (const p of patterns) assert.doesNotThrow(() => new RegExp(p, "u"), p);
});
