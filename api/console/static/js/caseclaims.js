// The whole-case claims of a comity-case/1 file, in the browser: a counterpart of
// ledger/audit/case.py (read its theory of operation), with the same reason codes, so the
// Verify page checks a case bundle as `comity case verify` does, not only as
// `comity bundle verify` does.
//
// A case bundle is a proof bundle whose subject records are a whole case, plus a `case`
// section: {case_ref, records: [{id, reasons: [{reason, to | sha256 | by}]}]}, listing
// every subject in commit order. `caseSection` checks its shape and that it lists exactly
// the bundle's records (before any proof is checked, as Python does); once bundle.js has
// proven every record, `checkCaseClaims` checks what the section claims against the proven
// records themselves: commit order (records_out_of_order), closure of refs (ref_missing),
// and each reason (bad_case_reason). What it cannot prove, Python cannot either: that the
// node listed every record of the case (a record named by no other record leaves no trace).

import { AuditFailure } from "./gov.js";

/** @typedef {import("./bundle.js").Proven} Proven */
/** @typedef {import("./bundle.js").OnCheck} OnCheck */
/** One of {reason} | {reason, to} | {reason, sha256} | {reason, by}, every value a string. @typedef {{reason: string, [key: string]: string}} Reason */
/** @typedef {{caseRef: string, rows: [string, Reason[]][]}} CaseSection */

export const REASONS = ["case_record", "answer", "custody_event", "referenced"];
/** The key each reason names its subject by (null: no subject). @type {Record<string, string | null>} */
const REASON_KEY = { case_record: null, answer: "to", custody_event: "sha256", referenced: "by" };

/** @param {unknown} v @returns {v is Record<string, unknown>} */
const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** @param {object} obj @param {readonly string[]} names */
const sameKeys = (obj, names) =>
  Object.keys(obj).length === names.length && names.every((n) => Object.hasOwn(obj, n));

/** @param {unknown} reason @returns {reason is Reason} */
function reasonOk(reason) {
  if (!isObject(reason) || typeof reason.reason !== "string" || !REASONS.includes(reason.reason)) return false;
  const key = REASON_KEY[reason.reason];
  if (key === undefined) return false;
  const wanted = key === null ? ["reason"] : ["reason", key];
  return sameKeys(reason, wanted) && Object.values(reason).every((v) => typeof v === "string");
}

/** @param {unknown} row @returns {row is {id: string, reasons: Reason[]}} */
function rowOk(row) {
  return (
    isObject(row) && sameKeys(row, ["id", "reasons"]) && typeof row.id === "string" &&
    Array.isArray(row.reasons) && row.reasons.length > 0 && row.reasons.every(reasonOk)
  );
}

/**
 * The case section of a comity-case/1 document, checked for shape and against the
 * bundle's records (ledger/audit/case.py's _case_section); AuditFailure bad_bundle,
 * bad_case or case_mismatch.
 * @param {unknown} doc @returns {CaseSection}
 */
export function caseSection(doc) {
  if (!isObject(doc) || doc.format !== "comity-case/1") {
    throw new AuditFailure("bad_bundle", "not a comity-case/1 document");
  }
  const section = doc.case;
  if (
    !isObject(section) || !sameKeys(section, ["case_ref", "records"]) ||
    typeof section.case_ref !== "string" || !Array.isArray(section.records)
  ) {
    throw new AuditFailure("bad_case", "bundle.case is not {case_ref, records}");
  }
  /** @type {[string, Reason[]][]} */
  const rows = [];
  for (const row of section.records) {
    if (!rowOk(row)) {
      throw new AuditFailure("bad_case", `case.records has a row that is not {id, reasons}: ${JSON.stringify(row)}`);
    }
    rows.push([row.id, row.reasons]);
  }
  const listed = doc.records;
  if (!Array.isArray(listed) || listed.length !== rows.length || rows.some(([id], i) => listed[i] !== id)) {
    throw new AuditFailure("case_mismatch", "case.records does not list exactly the bundle's records");
  }
  return { caseRef: section.case_ref, rows };
}

/** The string ids a record names in its refs. @param {Proven} proven @returns {string[]} */
function refsOf(proven) {
  const refs = proven.record.refs;
  return Array.isArray(refs) ? refs.filter((r) => typeof r === "string") : [];
}

/** The evidence hashes a record lists. @param {Proven} proven @returns {Set<string>} */
function hashesOf(proven) {
  const items = proven.record.evidence;
  if (!Array.isArray(items)) return new Set();
  return new Set(items.filter((e) => isObject(e) && typeof e.sha256 === "string").map((e) => e.sha256));
}

/** @param {[string, Reason[]][]} rows @param {Map<string, Proven>} proven */
function checkOrder(rows, proven) {
  for (const [i, [id]] of rows.entries()) {
    const previous = rows[i - 1];
    if (previous === undefined) continue;
    const before = /** @type {Proven} */ (proven.get(previous[0]));
    const after = /** @type {Proven} */ (proven.get(id));
    if (after.leafIndex <= before.leafIndex) {
      throw new AuditFailure(
        "records_out_of_order",
        `case.records lists ${after.id} (leaf ${after.leafIndex}) after ${before.id} (leaf ${before.leafIndex}): that is not commit order`,
      );
    }
  }
}

/** @param {readonly Proven[]} records @param {Map<string, Proven>} proven */
function checkRefs(records, proven) {
  for (const record of records) {
    const missing = refsOf(record).filter((r) => !proven.has(r));
    if (missing.length) {
      throw new AuditFailure(
        "ref_missing",
        `record ${record.id} names ${JSON.stringify(missing)} in its refs, which the bundle does not hold: a record was dropped`,
      );
    }
  }
}

/**
 * Whether `reason` holds of the proven `record` (ledger/audit/case.py's _check_reason).
 * @param {string} caseRef @param {Proven} record @param {Reason} reason @param {Map<string, Proven>} proven
 */
function reasonHolds(caseRef, record, reason, proven) {
  const kind = reason.reason;
  // A private act's header without its body: proven by its header, its content unseen.
  if (record.record.type === "private_act" && kind !== "referenced") return true;
  if (kind === "case_record") return record.record.case_ref === caseRef;
  // reasonOk made sure the reason's key is there: "" (never a record id or a hash) is not reached.
  if (kind === "answer") {
    const to = reason.to ?? "";
    return proven.has(to) && refsOf(record).includes(to);
  }
  if (kind === "custody_event") {
    const sha = reason.sha256 ?? "";
    return (
      record.record.type === "custody_event" && hashesOf(record).has(sha) &&
      [...proven.values()].some((other) => other !== record && hashesOf(other).has(sha))
    );
  }
  const by = proven.get(reason.by ?? "");
  return by !== undefined && refsOf(by).includes(record.id);
}

/**
 * Check the case section's claims against the proven records (bundle.js's report.records,
 * in the bundle's order); AuditFailure records_out_of_order, ref_missing or bad_case_reason.
 * Returns the reasons by record id.
 * @param {CaseSection} section @param {readonly Proven[]} records @param {OnCheck} onCheck
 * @returns {Map<string, Reason[]>}
 */
export function checkCaseClaims(section, records, onCheck = () => {}) {
  /** @type {Map<string, Proven>} */
  const proven = new Map(records.map((r) => [r.id, r]));
  checkOrder(section.rows, proven);
  onCheck({ check: "case_order", height: null, detail: `${section.rows.length} record(s) in commit order` });
  checkRefs(records, proven);
  onCheck({ check: "case_refs", height: null, detail: "every record named in a record's refs is in the bundle" });
  for (const [id, reasons] of section.rows) {
    const record = /** @type {Proven} */ (proven.get(id));
    for (const reason of reasons) {
      if (!reasonHolds(section.caseRef, record, reason, proven)) {
        throw new AuditFailure(
          "bad_case_reason",
          `record ${id} is listed as ${JSON.stringify(reason)}, which its proven content does not bear out`,
        );
      }
    }
  }
  const counts = REASONS.map((k) => [k, section.rows.filter(([, rs]) => rs.some((r) => r.reason === k)).length])
    .filter(([, n]) => n)
    .map(([k, n]) => `${n} ${String(k).replace("_", " ")}`);
  onCheck({ check: "case_reasons", height: null, detail: `case ${section.caseRef}: ${counts.join(", ")}` });
  return new Map(section.rows);
}
