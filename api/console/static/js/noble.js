// The console's one loader of its pure-JS Ed25519, `@noble/ed25519`, which scripts/console-vendor
// copies to /console/vendor/ (git-ignored; a node may not have it). keys.js signs with it and
// ed25519.js verifies with it, both only when WebCrypto has no Ed25519 (or a test forces it).
// The module is imported at most once per path; a path that does not load gives null, and the
// caller names that (ed25519_unavailable) instead of passing or signing anything.

export const NOBLE_PATH = "../vendor/noble-ed25519.js";

/**
 * The part of a point of `@noble/ed25519` that the console uses (its `Point` class).
 * @typedef {object} NoblePoint
 * @property {(other: NoblePoint) => NoblePoint} add
 * @property {() => NoblePoint} negate
 * @property {(scalar: bigint, safe?: boolean) => NoblePoint} multiply
 * @property {() => Uint8Array} toBytes
 */

/**
 * The part of `@noble/ed25519` the console uses. The vendor file is not committed, so the type
 * is written out here rather than imported from it.
 * @typedef {object} Noble
 * @property {(secretKey: Uint8Array) => Promise<Uint8Array>} getPublicKeyAsync
 * @property {(message: Uint8Array, secretKey: Uint8Array) => Promise<Uint8Array>} signAsync
 * @property {{BASE: NoblePoint, fromBytes: (bytes: Uint8Array, zip215?: boolean) => NoblePoint}} Point
 */

/** @type {Map<string, Promise<Noble | null>>} */
const loaded = new Map();

/**
 * `@noble/ed25519` from `modulePath` (relative to this file), or null if it does not load.
 * @param {string} [modulePath] @returns {Promise<Noble | null>}
 */
export function loadNoble(modulePath = NOBLE_PATH) {
  let module = loaded.get(modulePath);
  if (module === undefined) {
    module = import(modulePath).then(
      (m) => (typeof m?.signAsync === "function" && typeof m?.Point?.fromBytes === "function" ? /** @type {Noble} */ (m) : null),
      () => null,
    );
    loaded.set(modulePath, module);
  }
  return module;
}
