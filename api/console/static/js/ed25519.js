// Ed25519 (RFC 8032) signature checks through WebCrypto's "Ed25519" algorithm (Chromium,
// Firefox, Safari and Node 20). There is no pure-JS fallback: a browser without it gets
// Ed25519Unavailable, and the Verify page says so instead of passing anything.
//
// WebCrypto alone is laxer than libsodium (PyNaCl), which the Python auditor uses: it
// accepts a public key or an R of small order, so the identity key "verifies" an identity
// signature over any message. libsodium refuses those, and a key whose y is not below
// p; so does this module, before WebCrypto, with the curve arithmetic of RFC 8032 §5.1
// (decode, then [8]P = identity exactly when P is in the small-order subgroup).

import { fromHex, isHex } from "./sha256.js";

export class Ed25519Unavailable extends Error {}

const P = 2n ** 255n - 19n;
/** @typedef {[bigint, bigint, bigint, bigint]} Point extended coordinates [X, Y, Z, T] */

/** @param {bigint} a */
const mod = (a) => ((a % P) + P) % P;

/** @param {bigint} base @param {bigint} exp */
function pow(base, exp) {
  let result = 1n;
  let b = mod(base);
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

const D = mod(-121665n * pow(121666n, P - 2n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

/**
 * RFC 8032 §5.1.3: the point [X, Y, Z, T] a 32-byte encoding names, or null.
 * @param {Uint8Array} bytes @returns {Point | null}
 */
function decode(bytes) {
  if (bytes.length !== 32) return null;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? (bytes[i] ?? 0) & 0x7f : (bytes[i] ?? 0));
  const sign = (bytes[31] ?? 0) >> 7;
  if (y >= P) return null; // not canonical
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
  if (mod(v * x * x) !== u) {
    if (mod(v * x * x) !== mod(-u)) return null;
    x = mod(x * SQRT_M1);
  }
  if (x === 0n && sign === 1) return null;
  if (Number(x & 1n) !== sign) x = P - x;
  return [x, y, 1n, mod(x * y)];
}

/**
 * RFC 8032 §5.1.4 doubling in extended coordinates.
 * @param {Point} point @returns {Point}
 */
function double([X1, Y1, Z1]) {
  const A = mod(X1 * X1);
  const B = mod(Y1 * Y1);
  const C = mod(2n * Z1 * Z1);
  const H = mod(A + B);
  const E = mod(H - (X1 + Y1) * (X1 + Y1));
  const G = mod(A - B);
  const F = mod(C + G);
  return [mod(E * F), mod(G * H), mod(F * G), mod(E * H)];
}

/** libsodium's refusals: an encoding that is not canonical, or a point of small order. */
/** @param {Uint8Array} bytes */
export function refusedPoint(bytes) {
  const point = decode(bytes);
  if (point === null) return true;
  const [X, Y, Z] = double(double(double(point)));
  return X === 0n && Y === Z;
}

/** @type {Map<string, CryptoKey>} */
const keys = new Map(); // hex -> CryptoKey; bounded like the Python verifier's cache
const KEYS_MAX = 100000;

/** @param {string} pubkeyHex @returns {Promise<CryptoKey>} */
async function importKey(pubkeyHex) {
  let key = keys.get(pubkeyHex);
  if (key === undefined) {
    if (keys.size > KEYS_MAX) keys.clear();
    key = await globalThis.crypto.subtle.importKey(
      "raw", fromHex(pubkeyHex), { name: "Ed25519" }, false, ["verify"],
    );
    keys.set(pubkeyHex, key);
  }
  return key;
}

/**
 * True if it verifies; false for anything malformed or wrong (never throws for bad input).
 * @param {unknown} pubkeyHex @param {BufferSource} message @param {unknown} signatureHex
 * @returns {Promise<boolean>}
 */
export async function verifySignature(pubkeyHex, message, signatureHex) {
  if (!isHex(pubkeyHex, 32) || !isHex(signatureHex, 64)) return false;
  const signature = fromHex(signatureHex);
  if (refusedPoint(fromHex(pubkeyHex)) || refusedPoint(signature.subarray(0, 32))) return false;
  let key;
  try {
    key = await importKey(pubkeyHex);
  } catch (error) {
    if (typeof error === "object" && error !== null && "name" in error && error.name === "NotSupportedError") {
      throw new Ed25519Unavailable("this browser's WebCrypto has no Ed25519");
    }
    return false; // not a point on the curve
  }
  try {
    return await globalThis.crypto.subtle.verify(
      { name: "Ed25519" }, key, signature, message,
    );
  } catch {
    return false;
  }
}
