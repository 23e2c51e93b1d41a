// node tests/js/verify-bundle.mjs BUNDLE_FILE [PINNED_GENESIS_HASH]: run the browser's bundle
// check (api/console/static/js/bundle.js) on a file and print one JSON line, {"ok": true, ...}
// or {"ok": false, "code", "height", "detail"}. Exit 0 when it verifies, 1 when it fails.
// Used by tests/integration/test_console_bundle.py on bundles the comity CLI exported.

import { readFileSync } from "node:fs";

import { AuditFailure, verifyBundle } from "../../api/console/static/js/bundle.js";

const [file, pinned] = process.argv.slice(2);
const checks = [];
try {
  const report = await verifyBundle(JSON.parse(readFileSync(file, "utf8")), {
    pinnedGenesisHash: pinned ?? null, onCheck: (check) => checks.push(check.check),
  });
  const records = report.records.map((r) => ({ id: r.id, height: r.height, committedBy: r.committedBy }));
  console.log(JSON.stringify({ ok: true, pinned: report.pinned, records, checks, blocks: report.blocks }));
} catch (error) {
  if (!(error instanceof AuditFailure)) throw error;
  console.log(JSON.stringify({ ok: false, code: error.code, height: error.height, detail: error.detail }));
  process.exitCode = 1;
}
