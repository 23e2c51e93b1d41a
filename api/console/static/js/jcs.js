// RFC 8785 (JCS) canonical bytes of Comity's JSON subset, as ledger/audit/chain.py's jcs():
// objects, arrays, strings, integers within ±(2^53-1), booleans and null; no floats,
// no lone surrogates, at most 32 levels of nesting (docs/PROTOCOL.md §2).
//
// JSON.stringify already writes strings as RFC 8785 §3.2.2.2 requires (the short
// escapes, \u00xx in lowercase hex for other controls, nothing else escaped), and
// the default sort of JavaScript strings compares UTF-16 code units, which is the
// member order of §3.2.3. What is left is refusing what the subset forbids.

export const MAX_DEPTH = 32;

export class CanonicalError extends Error {}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** @param {unknown} value @param {number} depth @returns {string} */
function canon(value, depth) {
  if (value === null || value === true || value === false) return JSON.stringify(value);
  if (typeof value === "string") {
    if (LONE_SURROGATE.test(value)) throw new CanonicalError("string holds a lone surrogate");
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new CanonicalError(`${value} is not an integer within ±(2^53-1) (no floats)`);
    }
    return JSON.stringify(value); // -0 prints as 0, as Python's int does
  }
  if (depth >= MAX_DEPTH) throw new CanonicalError("nesting deeper than 32 levels");
  if (Array.isArray(value)) return `[${value.map((item) => canon(item, depth + 1)).join(",")}]`;
  if (typeof value === "object") {
    const members = Object.keys(value)
      .sort()
      .map((key) => `${canon(key, depth)}:${canon(/** @type {Record<string, unknown>} */ (value)[key], depth + 1)}`);
    return `{${members.join(",")}}`;
  }
  throw new CanonicalError(`${typeof value} is not in Comity's JSON subset`);
}

/** The canonical text of `value`; throws CanonicalError outside the subset. */
/** @param {unknown} value @returns {string} */
export function canonicalText(value) {
  return canon(value, 0);
}

/** The canonical UTF-8 bytes of `value` (what Comity hashes and signs). */
/** @param {unknown} value @returns {Uint8Array<ArrayBuffer>} */
export function jcs(value) {
  return new TextEncoder().encode(canon(value, 0));
}
