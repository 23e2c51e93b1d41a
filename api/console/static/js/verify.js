// The Verify page's logic, without the DOM (so Node's test runner drives it as the page
// does): a bundle file's text, and the reader's genesis file or genesis hash, in; the list
// of checks out, each passed or failed with its reason code. Nothing leaves the browser.

import { AuditFailure, CASE_FORMAT, completeGenesis, genesisHash, verifyBundle } from "./bundle.js";
import { caseSection, checkCaseClaims } from "./caseclaims.js";
import { Ed25519Unavailable } from "./ed25519.js";
import { isHex, sha256Hex } from "./sha256.js";

/** The largest bundle file read (the CLI's reply limit: one block at max_block_bytes). */
export const BUNDLE_BYTES_MAX = 128 * 1024 * 1024;
/** The largest evidence file hashed in the browser: WebCrypto has no streaming digest. */
export const EVIDENCE_BYTES_MAX = 512 * 1024 * 1024;

/** @typedef {import("./bundle.js").Check & {ok: boolean, code?: string}} ListedCheck */
/** @typedef {import("./bundle.js").Evidence} Evidence */
/** @typedef {{genesisText?: string | null, genesisHashText?: string | null, evidence?: readonly Evidence[]}} VerifyOptions */
/** A case bundle's case: its reference and each record's reasons. @typedef {{caseRef: string, reasons: Map<string, import("./caseclaims.js").Reason[]>}} CaseResult */

/** @param {string} text @param {string} what @returns {unknown} */
function parse(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new AuditFailure("not_json", `${what} is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
}

/**
 * Work out the pinned genesis hash: from the reader's genesis file (completed from the
 * bundle's own genesis as `comity bundle verify --genesis` does), from a typed hash, or
 * both (then they must agree). Returns null when neither is given: nothing is pinned.
 * @param {unknown} bundle @param {VerifyOptions} options @returns {Promise<string | null>}
 */
export async function pinnedHash(bundle, { genesisText = null, genesisHashText = null } = {}) {
  /** @type {string[]} */
  const pins = [];
  const typed = genesisHashText?.trim().toLowerCase();
  if (typed) {
    if (!isHex(typed, 32)) throw new AuditFailure("bad_genesis_hash", "the genesis hash is not 64 hex digits");
    pins.push(typed);
  }
  if (genesisText !== null && genesisText !== "") {
    const served = typeof bundle === "object" && bundle !== null && "genesis" in bundle ? bundle.genesis : undefined;
    const [completed] = completeGenesis(parse(genesisText, "the genesis file"), served);
    pins.push(await genesisHash(completed));
  }
  if (new Set(pins).size > 1) {
    throw new AuditFailure("genesis_mismatch", "the genesis file and the genesis hash disagree");
  }
  return pins[0] ?? null;
}

/**
 * Run every check. Returns {checks: [{check, height, detail, ok, code?}], report | null,
 * failure | null, case | null}; a failure is the last check, with ok false and its reason
 * code. A comity-case/1 file is also checked as `comity case verify` checks it: its case
 * section first (shape, and exactly the bundle's records), then every proof, then the case's
 * claims (caseclaims.js); a listed record in no block is then record_missing.
 * @param {string} bundleText @param {VerifyOptions} options
 * @returns {Promise<{checks: ListedCheck[], report: import("./bundle.js").BundleReport | null,
 *   failure: AuditFailure | null, case: CaseResult | null}>}
 */
export async function verifyText(bundleText, options = {}) {
  /** @type {ListedCheck[]} */
  const checks = [];
  /** @type {import("./bundle.js").OnCheck} */
  const onCheck = (check) => {
    checks.push({ ...check, ok: true });
  };
  try {
    if (bundleText.length > BUNDLE_BYTES_MAX) {
      throw new AuditFailure("bad_bundle", `the bundle is over ${BUNDLE_BYTES_MAX} bytes`);
    }
    const bundle = parse(bundleText, "the bundle file");
    const pinned = await pinnedHash(bundle, options);
    const isCase = typeof bundle === "object" && bundle !== null && "format" in bundle && bundle.format === CASE_FORMAT;
    const section = isCase ? caseSection(bundle) : null;
    if (section) onCheck({ check: "case_section", height: null, detail: `${section.caseRef}: ${section.rows.length} record(s)` });
    let report;
    try {
      report = await verifyBundle(bundle, { pinnedGenesisHash: pinned, evidence: options.evidence ?? [], onCheck });
    } catch (error) {
      if (section && error instanceof AuditFailure && error.code === "record_not_proven") {
        throw new AuditFailure("record_missing", `case.records lists ${error.detail}`);
      }
      throw error;
    }
    if (section === null) return { checks, report, failure: null, case: null };
    const reasons = checkCaseClaims(section, report.records, onCheck);
    return { checks, report, failure: null, case: { caseRef: section.caseRef, reasons } };
  } catch (error) {
    let failure = error;
    if (error instanceof Ed25519Unavailable) failure = new AuditFailure("ed25519_unavailable", error.message);
    if (!(failure instanceof AuditFailure)) throw error;
    checks.push({ check: "failed", height: failure.height, detail: failure.detail, ok: false, code: failure.code });
    return { checks, report: null, failure, case: null };
  }
}

/**
 * {name, sha256} of a local evidence file (a File), hashed here, never sent.
 * @param {File} file @returns {Promise<Evidence>}
 */
export async function hashEvidence(file) {
  if (file.size > EVIDENCE_BYTES_MAX) {
    throw new AuditFailure(
      "evidence_too_large", `${file.name} is over ${EVIDENCE_BYTES_MAX} bytes: hash it with comity bundle verify --evidence`,
    );
  }
  return { name: file.name, sha256: await sha256Hex(new Uint8Array(await file.arrayBuffer())) };
}
