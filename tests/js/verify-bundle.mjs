// node tests/js/verify-bundle.mjs BUNDLE_FILE [PINNED_GENESIS_HASH]: run the Verify page's check
// (api/console/static/js/verify.js: bundle.js's proofs, and caseclaims.js's case claims for a
// comity-case/1 file) on a file and print one JSON line, {"ok": true, ...} or
// {"ok": false, "code", "height", "detail"}. Exit 0 when it verifies, 1 when it fails.
// Used by tests/integration/test_console_bundle.py on bundles the comity CLI exported.

import { readFileSync } from "node:fs";

import { verifyText } from "../../api/console/static/js/verify.js";

const [file, pinned] = process.argv.slice(2);
const out = await verifyText(readFileSync(file, "utf8"), { genesisHashText: pinned ?? null });
if (out.failure === null && out.report !== null) {
  const { report } = out;
  const records = report.records.map((r) => ({ id: r.id, height: r.height, committedBy: r.committedBy }));
  const reasons = out.case === null ? null : Object.fromEntries(out.case.reasons);
  const checks = out.checks.map((check) => check.check);
  console.log(JSON.stringify({ ok: true, pinned: report.pinned, records, checks, blocks: report.blocks, reasons }));
} else {
  const { failure } = out;
  console.log(JSON.stringify({ ok: false, code: failure?.code, height: failure?.height, detail: failure?.detail }));
  process.exitCode = 1;
}
