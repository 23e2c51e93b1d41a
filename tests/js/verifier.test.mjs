// The browser's JCS, Ed25519 and bundle check against what the Python code says, case by
// case. tests/unit/test_console_js.py writes the cases (COMITY_JS_CASES, a JSON file) from
// ledger/canonical.py, PyNaCl and ledger/audit/bundle.py, then runs this file: every
// canonical byte string, every signature verdict and every bundle reason must be the same.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { AuditFailure, verifyBundle } from "../../api/console/static/js/bundle.js";
import { Ed25519Unavailable, configureVerifier, verifySignature } from "../../api/console/static/js/ed25519.js";
import { CanonicalError, jcs } from "../../api/console/static/js/jcs.js";
import { fromHex, toHex } from "../../api/console/static/js/sha256.js";

const path = process.env.COMITY_JS_CASES;
const cases = path ? JSON.parse(readFileSync(path, "utf8")) : null;
const skip = cases ? false : "run by tests/unit/test_console_js.py (COMITY_JS_CASES)";
// The fallback's own tests need vendor/noble-ed25519.js (scripts/console-vendor, needs npm).
const skipFallback = skip || (process.env.COMITY_JS_NO_VENDOR ? "scripts/console-vendor has not been run" : false);

test("RFC 8785 bytes equal ledger/canonical.py's, and the same values are refused", { skip }, () => {
  assert.ok(cases.jcs.length > 10);
  for (const c of cases.jcs) {
    const value = JSON.parse(c.json);
    if (c.canonical === null) {
      assert.throws(() => jcs(value), CanonicalError, c.json);
    } else {
      assert.equal(toHex(jcs(value)), c.canonical, c.json);
    }
  }
});

test("Ed25519 verdicts equal PyNaCl's", { skip }, async () => {
  assert.ok(cases.ed25519.some((c) => c.valid) && cases.ed25519.some((c) => !c.valid));
  for (const c of cases.ed25519) {
    assert.equal(await verifySignature(c.pubkey, fromHex(c.message), c.signature), c.valid, c.name);
  }
});

/** The bundle cases' verdicts, as the Python verifier gives them (or the AuditFailure code). */
async function bundleVerdicts() {
  const got = [];
  for (const c of cases.bundles) {
    try {
      await verifyBundle(JSON.parse(c.text), { pinnedGenesisHash: c.pinned, evidence: c.evidence });
      got.push("ok");
    } catch (error) {
      if (!(error instanceof AuditFailure)) throw error;
      got.push(error.code);
    }
  }
  return got;
}

/** Run `body` with WebCrypto's Ed25519 gone (importKey refuses it as a browser without it does). */
async function withoutWebCryptoEd25519(body) {
  const subtle = globalThis.crypto.subtle;
  const importKey = subtle.importKey;
  subtle.importKey = async (format, data, algorithm, ...rest) => {
    const name = typeof algorithm === "string" ? algorithm : algorithm?.name;
    if (name === "Ed25519") throw new DOMException("Unrecognized algorithm name", "NotSupportedError");
    return importKey.call(subtle, format, data, algorithm, ...rest);
  };
  try {
    configureVerifier({});
    return await body();
  } finally {
    subtle.importKey = importKey;
    configureVerifier({});
  }
}

test("the pure-JS fallback gives PyNaCl's verdicts, hostile cases included", { skip: skipFallback }, async () => {
  configureVerifier({ backend: "noble" });
  try {
    assert.ok(cases.ed25519.some((c) => c.name === "R with a torsion component" && !c.valid));
    for (const c of cases.ed25519) {
      assert.equal(await verifySignature(c.pubkey, fromHex(c.message), c.signature), c.valid, c.name);
    }
    assert.deepEqual(await bundleVerdicts(), cases.bundles.map((c) => c.expect));
  } finally {
    configureVerifier({});
  }
});

test("without WebCrypto's Ed25519 a bundle still verifies, through the fallback", { skip: skipFallback }, async () => {
  await withoutWebCryptoEd25519(async () => {
    const webCryptoGone = await globalThis.crypto.subtle.importKey(
      "raw", new Uint8Array(32), { name: "Ed25519" }, false, ["verify"],
    ).then(() => false, (e) => e.name === "NotSupportedError");
    assert.ok(webCryptoGone);
    for (const c of cases.ed25519) {
      assert.equal(await verifySignature(c.pubkey, fromHex(c.message), c.signature), c.valid, c.name);
    }
    assert.deepEqual(await bundleVerdicts(), cases.bundles.map((c) => c.expect));
  });
});

test("without WebCrypto's Ed25519 or the vendor file, the Verify page names it", { skip }, async () => {
  const { verifyText } = await import("../../api/console/static/js/verify.js");
  await withoutWebCryptoEd25519(async () => {
    configureVerifier({ noblePath: "../vendor/absent-verifier.js" });
    const good = cases.ed25519.find((c) => c.valid);
    await assert.rejects(
      verifySignature(good.pubkey, fromHex(good.message), good.signature),
      (e) => e instanceof Ed25519Unavailable && /not installed/.test(e.message),
    );
    const out = await verifyText(cases.genesis.bundle, {});
    assert.equal(out.report, null);
    assert.deepEqual([out.checks.at(-1).ok, out.checks.at(-1).code], [false, "ed25519_unavailable"]);
    assert.equal(out.failure.code, "ed25519_unavailable");
  });
});

test("bundles: the Python verifier's verdict and reason, case by case", { skip }, async () => {
  assert.ok(cases.bundles.some((c) => c.expect === "ok"));
  for (const c of cases.bundles) {
    const bundle = JSON.parse(c.text);
    const checks = [];
    let got = "ok";
    try {
      const report = await verifyBundle(bundle, {
        pinnedGenesisHash: c.pinned, evidence: c.evidence, onCheck: (check) => checks.push(check),
      });
      assert.deepEqual(report.records.map((r) => r.id), bundle.records, c.name);
      assert.equal(report.pinned, c.pinned !== null, c.name);
      if (c.committed_by) assert.deepEqual(report.records[0].committedBy, c.committed_by, c.name);
    } catch (error) {
      if (!(error instanceof AuditFailure)) throw error;
      got = error.code;
    }
    assert.equal(got, c.expect, c.name);
    if (got === "ok") assert.ok(checks.some((k) => k.check === "certificate"), c.name);
  }
});

test("the Verify page's logic: genesis file completed and pinned, every refusal named", { skip }, async () => {
  const { verifyText } = await import("../../api/console/static/js/verify.js");
  const g = cases.genesis;
  const ok = await verifyText(g.bundle, { genesisText: g.file, evidence: [] });
  assert.equal(ok.failure, null, JSON.stringify(ok.checks.at(-1)));
  assert.equal(ok.report.genesisHash, g.expect_hash);
  assert.ok(ok.report.pinned && ok.checks.every((c) => c.ok));
  assert.equal(ok.checks[0].check, "genesis_pinned");
  const both = await verifyText(g.bundle, { genesisText: g.file, genesisHashText: g.expect_hash.toUpperCase() });
  assert.equal(both.failure, null);
  const unpinned = await verifyText(g.bundle, {});
  assert.equal(unpinned.failure, null);
  assert.equal(unpinned.report.pinned, false);
  const refusals = [
    ["genesis_mismatch", g.bundle, { genesisText: g.other_file }],
    ["genesis_mismatch", g.bundle, { genesisText: g.file, genesisHashText: "00".repeat(32) }],
    ["bad_genesis_hash", g.bundle, { genesisHashText: "abc" }],
    ["not_json", "{", { genesisText: g.file }],
    ["bad_bundle", "[]", {}],
  ];
  for (const [code, text, options] of refusals) {
    const out = await verifyText(text, options);
    assert.deepEqual([out.checks.at(-1).ok, out.checks.at(-1).code], [false, code], JSON.stringify(options));
    assert.equal(out.report, null);
  }
});

test("case bundles: comity case verify's verdict and reason, case by case, and the case's reasons", { skip }, async () => {
  const { verifyText } = await import("../../api/console/static/js/verify.js");
  const c = cases.case;
  assert.ok(c.cases.length > 15 && c.cases.some((k) => k.expect === "ok"));
  for (const k of c.cases) {
    const out = await verifyText(k.text, { genesisText: c.genesis });
    const got = out.failure === null ? "ok" : out.failure.code;
    assert.equal(got, k.expect, `${k.name}: ${out.failure?.message}`);
    if (k.name !== "as exported") continue;
    assert.ok(out.case !== null && out.report?.pinned);
    assert.deepEqual(Object.fromEntries(out.case.reasons), c.reasons);
    const names = out.checks.map((check) => check.check);
    for (const name of ["case_section", "case_order", "case_refs", "case_reasons"]) assert.ok(names.includes(name), name);
    assert.ok(out.checks.every((check) => check.ok));
  }
});
