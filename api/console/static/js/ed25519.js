// Ed25519 (RFC 8032) signature checks through WebCrypto's "Ed25519" algorithm (Chromium,
// Firefox, Safari and Node 20). There is no pure-JS fallback: a browser without it gets
// Ed25519Unavailable, and the Verify page says so instead of passing anything.

import { fromHex, isHex } from "./sha256.js";

export class Ed25519Unavailable extends Error {}

const keys = new Map(); // hex -> CryptoKey; bounded like the Python verifier's cache
const KEYS_MAX = 100000;

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

/** True if it verifies; false for anything malformed or wrong (never throws for bad input). */
export async function verifySignature(pubkeyHex, message, signatureHex) {
  if (!isHex(pubkeyHex, 32) || !isHex(signatureHex, 64)) return false;
  let key;
  try {
    key = await importKey(pubkeyHex);
  } catch (error) {
    if (error?.name === "NotSupportedError") {
      throw new Ed25519Unavailable("this browser's WebCrypto has no Ed25519");
    }
    return false; // not a point on the curve
  }
  try {
    return await globalThis.crypto.subtle.verify(
      { name: "Ed25519" }, key, fromHex(signatureHex), message,
    );
  } catch {
    return false;
  }
}
