// Ed25519 (RFC 8032) signature checks, through WebCrypto's "Ed25519" algorithm (Chromium,
// Firefox, Safari and Node 20) or, where WebCrypto has none, through the console's pure-JS
// `@noble/ed25519` (vendor/noble-ed25519.js, loaded by noble.js, the same loader keys.js signs
// with). A browser with neither gets Ed25519Unavailable, and the Verify page says so
// (reason ed25519_unavailable) instead of passing anything.
//
// WebCrypto alone is laxer than libsodium (PyNaCl), which the Python auditor uses: it
// accepts a public key or an R of small order, so the identity key "verifies" an identity
// signature over any message. libsodium refuses those, a key whose y is not below p, and an
// S not below L; so does this module, before either backend, with the curve arithmetic of
// RFC 8032 §5.1 (decode, then [8]P = identity exactly when P is in the small-order subgroup).
// The fallback then checks libsodium's equation, cofactorless: the encoding of
// [S]B - [k]A must be R's 32 bytes (RFC 8032 §5.1.7 with the check of §5.1.7 step 3 done
// without the factor 8), so a key or R with a torsion component is refused on both paths.

import { NOBLE_PATH, loadNoble } from "./noble.js";
import { fromHex, isHex } from "./sha256.js";

export class Ed25519Unavailable extends Error {}

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n; // RFC 8032 §5.1: the group order
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

/** @param {Uint8Array} bytes little-endian @returns {bigint} */
function littleEndian(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] ?? 0);
  return n;
}

/**
 * Which backend verifies: "auto" (WebCrypto, else the fallback), or one forced (tests).
 * @typedef {{backend?: "auto" | "webcrypto" | "noble", noblePath?: string}} VerifierOptions
 */
/** @type {{backend: "auto" | "webcrypto" | "noble", noblePath: string}} */
const config = { backend: "auto", noblePath: NOBLE_PATH };
/** @type {boolean | null} null until the first key import says whether WebCrypto has Ed25519 */
let webCryptoHasIt = null;

/**
 * Set the backend for every later check (and forget what was learnt about WebCrypto).
 * @param {VerifierOptions} options
 */
export function configureVerifier(options) {
  config.backend = options.backend ?? "auto";
  config.noblePath = options.noblePath ?? NOBLE_PATH;
  webCryptoHasIt = null;
  keys.clear();
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
 * libsodium's check with `@noble/ed25519`'s group arithmetic: encode([S]B - [k]A) === R,
 * k = SHA-512(R || A || M) mod L. The refusals of verifySignature have been applied.
 * @param {import("./noble.js").Noble} ed @param {Uint8Array} pubkey @param {Uint8Array} message
 * @param {Uint8Array} signature @returns {Promise<boolean>}
 */
async function nobleVerify(ed, pubkey, message, signature) {
  const R = signature.subarray(0, 32);
  const S = littleEndian(signature.subarray(32));
  let A;
  try {
    A = ed.Point.fromBytes(pubkey, false);
  } catch {
    return false; // not a point on the curve
  }
  const hashed = new Uint8Array(32 + 32 + message.length);
  hashed.set(R, 0);
  hashed.set(pubkey, 32);
  hashed.set(message, 64);
  const k = littleEndian(new Uint8Array(await globalThis.crypto.subtle.digest("SHA-512", hashed))) % L;
  const check = ed.Point.BASE.multiply(S, false).add(A.multiply(k, false).negate()).toBytes();
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= (check[i] ?? 0) ^ (R[i] ?? 0);
  return diff === 0;
}

/** @param {Uint8Array} pubkey @param {Uint8Array} message @param {Uint8Array} signature */
async function fallbackVerify(pubkey, message, signature) {
  const ed = await loadNoble(config.noblePath);
  if (ed === null) {
    throw new Ed25519Unavailable("this browser's WebCrypto has no Ed25519, and the console's fallback verifier (vendor/noble-ed25519.js) is not installed on this node");
  }
  return nobleVerify(ed, pubkey, message, signature);
}

/**
 * True if it verifies; false for anything malformed or wrong (never throws for bad input).
 * @param {unknown} pubkeyHex @param {BufferSource} message @param {unknown} signatureHex
 * @returns {Promise<boolean>}
 */
export async function verifySignature(pubkeyHex, message, signatureHex) {
  if (!isHex(pubkeyHex, 32) || !isHex(signatureHex, 64)) return false;
  const signature = fromHex(signatureHex);
  const pubkey = fromHex(pubkeyHex);
  if (refusedPoint(pubkey) || refusedPoint(signature.subarray(0, 32))) return false;
  if (littleEndian(signature.subarray(32)) >= L) return false; // S not canonical
  const bytes = message instanceof Uint8Array ? message
    : ArrayBuffer.isView(message) ? new Uint8Array(message.buffer, message.byteOffset, message.byteLength)
    : new Uint8Array(message);
  if (config.backend === "noble" || (config.backend === "auto" && webCryptoHasIt === false)) {
    return fallbackVerify(pubkey, bytes, signature);
  }
  let key;
  try {
    key = await importKey(pubkeyHex);
    webCryptoHasIt = true;
  } catch (error) {
    if (typeof error === "object" && error !== null && "name" in error && error.name === "NotSupportedError") {
      if (config.backend === "webcrypto") throw new Ed25519Unavailable("this browser's WebCrypto has no Ed25519");
      webCryptoHasIt = false;
      return fallbackVerify(pubkey, bytes, signature);
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
