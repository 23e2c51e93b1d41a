// The Chain view's search: each kind of query goes to its own call, and a query of the
// wrong format is refused before anything is sent (searchRequest returns null). The
// Case view's links take only what can be a case_ref. Run by tests/unit/test_console_live.py.

import assert from "node:assert/strict";
import { test } from "node:test";

const { SEARCHES, searchRequest } = await import("../../../api/console/static/js/chain.js");
const { validCaseRef } = await import("../../../api/console/static/js/case.js");

const hash = "ab".repeat(32);

test("each kind of query is routed to its call", () => {
  assert.deepEqual(Object.keys(SEARCHES), ["record", "case", "evidence", "signer"]);
  assert.deepEqual(searchRequest("record", hash), [`/v1/records/${hash}`, {}]);
  assert.deepEqual(searchRequest("record", ` ${hash.toUpperCase()} `), [`/v1/records/${hash}`, {}]);
  assert.deepEqual(searchRequest("case", " CN-2026/7 "), ["/v1/search", { case_ref: "CN-2026/7", limit: 100 }]);
  assert.deepEqual(searchRequest("evidence", hash), ["/v1/search", { evidence_sha256: hash, limit: 100 }]);
  assert.deepEqual(searchRequest("signer", hash), ["/v1/search", { signer: hash, limit: 100 }]);
});

test("a malformed query is refused unsent, whatever its kind", () => {
  const bad = {
    record: ["", "ab", hash.slice(1), `${hash}00`, `${hash.slice(2)}zz`, "../v1/peers", `${hash.slice(1)}/`],
    case: ["", " ", "x".repeat(129), "a\nb", "tab\there", "nul\u0000"],
    evidence: ["", hash.slice(2), `${hash} ${hash}`, "g".repeat(64)],
    signer: ["", "00", "é".repeat(64)],
    other: [hash],
  };
  for (const [kind, queries] of Object.entries(bad)) {
    for (const q of queries) assert.equal(searchRequest(kind, q), null, `${kind}: ${JSON.stringify(q)}`);
  }
  assert.equal(searchRequest("__proto__", hash), null);
  assert.equal(validCaseRef("x".repeat(128)), true);
  assert.equal(validCaseRef(7), false);
});
