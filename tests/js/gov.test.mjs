// gov.js, the browser's governance replay, against ledger/audit/gov.py's GovState on scripted
// blocks of governance records (hostile ones included): tests/unit/test_console_js.py writes
// each scenario with what the Python replay says (the failure code, or the validator sets,
// changes and signing verdicts it ends with) to COMITY_JS_CASES, and this file must agree.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { AuditFailure, GovState, parseUtc } from "../../api/console/static/js/gov.js";

/** Python's sorted() of [name, value] pairs (names are unique). @param {[string, unknown]} a @param {[string, unknown]} b */
const byFirst = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

const path = process.env.COMITY_JS_CASES;
const cases = path ? JSON.parse(readFileSync(path, "utf8")) : null;
const skip = cases ? false : "run by tests/unit/test_console_js.py (COMITY_JS_CASES)";

test("the governance replay: the Python replay's outcome, scenario by scenario", { skip }, () => {
  assert.ok(cases.gov.scenarios.length > 5);
  for (const scenario of cases.gov.scenarios) {
    const gov = new GovState(scenario.genesis ?? cases.gov.genesis);
    let outcome = "ok";
    try {
      for (const [height, records] of scenario.blocks) gov.applyBlock(height, records);
    } catch (error) {
      if (!(error instanceof AuditFailure)) throw error;
      outcome = error.code;
    }
    assert.equal(outcome, scenario.expect.outcome, scenario.name);
    if (outcome !== "ok") continue;
    for (const [height, states] of scenario.expect.sets) {
      assert.deepEqual(gov.validators(height).map((s) => s.state), states, `${scenario.name} at ${height}`);
    }
    assert.deepEqual(gov.changes.map((c) => [c.height, c.action, c.state]), scenario.expect.changes, scenario.name);
    const statuses = [...gov.proposals.values()].map((p) => [p.id, gov.status(p, 2000)]);
    assert.deepEqual(statuses.sort(byFirst), scenario.expect.statuses, `${scenario.name}: statuses`);
    assert.deepEqual([...gov.params].sort(byFirst), scenario.expect.params, `${scenario.name}: params`);
    assert.deepEqual([...gov.observers].sort(byFirst), scenario.expect.observers, `${scenario.name}: observers`);
    for (const [height, time, signer, record, verdict] of scenario.expect.rights) {
      const got = gov.authorise(height, parseUtc(time), signer, record);
      assert.equal(got === null ? null : got[0], verdict, `${scenario.name}: ${record.type} by ${signer.slice(0, 8)}`);
    }
  }
});

test("times compare to the microsecond, offsets included", () => {
  assert.equal(parseUtc("2026-01-01T00:00:00.000001Z") - parseUtc("2026-01-01T00:00:00Z"), 1n);
  assert.equal(parseUtc("2026-01-01T01:00:00+01:00"), parseUtc("2026-01-01T00:00:00Z"));
  assert.throws(() => parseUtc("yesterday"), TypeError);
});
