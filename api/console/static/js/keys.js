// Signing keys in the browser (issue 21): an investigator's or an authority's Ed25519 key,
// read from the PKCS#8 PEM file `comity` writes (ledger/keys.py), kept in this tab only.
//
// Theory of operation
// -------------------
// A key file is hostile until parsed: `parsePem` takes exactly one "PRIVATE KEY" block of
// strict base64, `parsePkcs8` exactly RFC 8410's OneAsymmetricKey for Ed25519 (OID
// 1.3.101.112), version 1 (v1, seed only) or 2 (v2, with the public key), in DER: minimal
// lengths, no trailing bytes, no parameters. Anything else is a KeyFileError naming why.
//
// `loadSigner` then makes a Signer. With WebCrypto's Ed25519 (current browsers, Node 20)
// the seed is imported once as extractable only to read its public key (JWK `x`), then
// imported again non-extractable; the bytes this module held are zeroed. Without it, the
// `@noble/ed25519` build in /console/vendor/ is imported (only then) and holds the seed
// in memory for this tab. Neither the key nor its seed is ever logged or sent anywhere.

import { NOBLE_PATH, loadNoble } from "./noble.js";
import { toHex } from "./sha256.js";

/** Why a key file was refused: `code` is stable, `message` is English detail. */
export class KeyFileError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export const PEM_BYTES_MAX = 16 * 1024; // a PKCS#8 Ed25519 key file is under 200 bytes
const ED25519_OID = Uint8Array.of(0x06, 0x03, 0x2b, 0x65, 0x70);

/**
 * @typedef {object} Signer
 * @property {string} publicHex    the Ed25519 public key, 64 lowercase hex
 * @property {"webcrypto" | "noble"} backend
 * @property {(message: Uint8Array) => Promise<Uint8Array>} sign
 * @property {() => void} forget  drop the key from memory
 */

/**
 * The DER bytes of the one `-----BEGIN PRIVATE KEY-----` block of a PEM text.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function parsePem(text) {
  if (typeof text !== "string" || text.length > PEM_BYTES_MAX) throw new KeyFileError("not_pem", "not a PEM key file (or larger than 16 KiB)");
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) throw new KeyFileError("encrypted_key", "an encrypted PKCS#8 file: decrypt it first (openssl pkey)");
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)];
  if (blocks.length !== 1) throw new KeyFileError("not_pem", `expected exactly one PEM block, found ${blocks.length}`);
  const label = blocks[0]?.[1] ?? "";
  if (label !== "PRIVATE KEY") throw new KeyFileError("not_private_key", `a PEM "${label}" block, not "PRIVATE KEY" (PKCS#8)`);
  const match = /^\s*-----BEGIN PRIVATE KEY-----\r?\n([^-]*)-----END PRIVATE KEY-----\s*$/.exec(text);
  if (!match) throw new KeyFileError("not_pem", "the PEM block is not closed by -----END PRIVATE KEY-----, or text surrounds it");
  const b64 = (match[1] ?? "").replace(/\r?\n/g, "");
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64) || b64.length === 0) {
    throw new KeyFileError("bad_base64", "the PEM body is not base64");
  }
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** A byte the caller has bounds-checked. @param {Uint8Array} bytes @param {number} i */
const byteAt = (bytes, i) => bytes[i] ?? 0;

/**
 * One DER TLV at `at`: its tag, where its content starts and ends. Definite, minimal lengths.
 * @param {Uint8Array} der @param {number} at @param {number} end
 * @returns {{tag: number, start: number, stop: number}}
 */
function tlv(der, at, end) {
  if (at + 2 > end) throw new KeyFileError("bad_der", `truncated DER at byte ${at}`);
  const tag = byteAt(der, at);
  let length = byteAt(der, at + 1);
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 2) throw new KeyFileError("bad_der", `unsupported DER length form at byte ${at}`);
    if (start + count > end) throw new KeyFileError("bad_der", `truncated DER length at byte ${at}`);
    length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | byteAt(der, start + i);
    if (length < 0x80 || (count === 2 && length < 0x100)) throw new KeyFileError("bad_der", `non-minimal DER length at byte ${at}`);
    start += count;
  }
  if (start + length > end) throw new KeyFileError("bad_der", `DER value at byte ${at} runs past its container`);
  return { tag, start, stop: start + length };
}

/** @param {Uint8Array} a @param {Uint8Array} b */
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * RFC 8410 §7 OneAsymmetricKey of an Ed25519 key: its 32-byte seed and, for version 2, the
 * public key it carries (checked against the seed by `loadSigner`).
 * @param {Uint8Array} der
 * @returns {{seed: Uint8Array, publicKey: Uint8Array | null}}
 */
export function parsePkcs8(der) {
  const outer = tlv(der, 0, der.length);
  if (outer.tag !== 0x30) throw new KeyFileError("bad_der", "a PKCS#8 key is a DER SEQUENCE");
  if (outer.stop !== der.length) throw new KeyFileError("trailing_data", "bytes after the key's SEQUENCE");
  const version = tlv(der, outer.start, outer.stop);
  if (version.tag !== 0x02 || version.stop - version.start !== 1 || byteAt(der, version.start) > 1) {
    throw new KeyFileError("bad_version", "version must be INTEGER 0 (v1) or 1 (v2)");
  }
  const v2 = der[version.start] === 1;
  const algorithm = tlv(der, version.stop, outer.stop);
  if (algorithm.tag !== 0x30 || !same(der.subarray(algorithm.start, algorithm.stop), ED25519_OID)) {
    throw new KeyFileError("not_ed25519", "the key's algorithm is not Ed25519 (OID 1.3.101.112, no parameters)");
  }
  const wrapped = tlv(der, algorithm.stop, outer.stop);
  if (wrapped.tag !== 0x04) throw new KeyFileError("bad_der", "privateKey must be an OCTET STRING");
  const inner = tlv(der, wrapped.start, wrapped.stop);
  if (inner.tag !== 0x04 || inner.stop !== wrapped.stop || inner.stop - inner.start !== 32) {
    throw new KeyFileError("bad_seed", "the Ed25519 private key must be an OCTET STRING of 32 bytes");
  }
  let at = wrapped.stop;
  let publicKey = null;
  if (at < outer.stop && der[at] === 0xa0) at = tlv(der, at, outer.stop).stop; // [0] attributes: ignored
  if (at < outer.stop && der[at] === 0x81) {
    if (!v2) throw new KeyFileError("bad_version", "a public key in a version 0 (v1) key");
    const key = tlv(der, at, outer.stop);
    if (key.stop - key.start !== 33 || der[key.start] !== 0) throw new KeyFileError("bad_public_key", "publicKey must be a BIT STRING of 32 bytes");
    publicKey = der.slice(key.start + 1, key.stop);
    at = key.stop;
  }
  if (at !== outer.stop) throw new KeyFileError("bad_der", `unexpected field at byte ${at}`);
  return { seed: der.slice(inner.start, inner.stop), publicKey };
}

/**
 * The v1 PKCS#8 of a seed (what WebCrypto imports; ledger/keys.py writes this form).
 * @param {Uint8Array} seed
 */
function v1Der(seed) {
  const out = new Uint8Array(48);
  out.set([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, ...ED25519_OID, 0x04, 0x22, 0x04, 0x20]);
  out.set(seed, 16);
  return out;
}

/** @param {string} b64url */
function fromBase64Url(b64url) {
  const binary = atob(b64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** True when this browser's WebCrypto signs with Ed25519. */
export async function webCryptoHasEd25519() {
  try {
    const probe = v1Der(new Uint8Array(32));
    await globalThis.crypto.subtle.importKey("pkcs8", probe, { name: "Ed25519" }, false, ["sign"]);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param {Uint8Array} seed
 * @returns {Promise<Signer>}
 */
async function webCryptoSigner(seed) {
  const der = v1Der(seed);
  try {
    const subtle = globalThis.crypto.subtle;
    const readable = await subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await subtle.exportKey("jwk", readable);
    const publicHex = toHex(fromBase64Url(String(jwk.x)));
    let key = /** @type {CryptoKey | null} */ (await subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]));
    return {
      publicHex,
      backend: "webcrypto",
      sign: async (message) => {
        if (!key) throw new KeyFileError("key_forgotten", "the key was forgotten");
        return new Uint8Array(await subtle.sign({ name: "Ed25519" }, key, /** @type {BufferSource} */ (message)));
      },
      forget: () => {
        key = null;
      },
    };
  } finally {
    der.fill(0);
  }
}

/**
 * The pure-JS signer, imported only when WebCrypto has no Ed25519 (or when forced).
 * @param {Uint8Array} seed
 * @param {string} modulePath
 * @returns {Promise<Signer>}
 */
async function nobleSigner(seed, modulePath) {
  const ed = await loadNoble(modulePath);
  if (ed === null) {
    throw new KeyFileError("ed25519_unavailable", "this browser's WebCrypto has no Ed25519, and the console's fallback signer (vendor/noble-ed25519.js) is not installed on this node");
  }
  let secret = /** @type {Uint8Array | null} */ (seed.slice());
  const publicHex = toHex(await ed.getPublicKeyAsync(seed));
  return {
    publicHex,
    backend: "noble",
    sign: async (message) => {
      if (!secret) throw new KeyFileError("key_forgotten", "the key was forgotten");
      return ed.signAsync(message, secret);
    },
    forget: () => {
      secret?.fill(0);
      secret = null;
    },
  };
}

/**
 * A Signer from PKCS#8 DER bytes (a file's, or the store's); `der` is zeroed after.
 * @param {Uint8Array} der
 * @param {{backend?: "auto" | "webcrypto" | "noble", noblePath?: string}} [options]
 * @returns {Promise<Signer>}
 */
export async function loadSigner(der, options = {}) {
  const backend = options.backend ?? "auto";
  const { seed, publicKey } = parsePkcs8(der);
  try {
    const useWebCrypto = backend === "webcrypto" || (backend === "auto" && (await webCryptoHasEd25519()));
    const signer = useWebCrypto ? await webCryptoSigner(seed) : await nobleSigner(seed, options.noblePath ?? NOBLE_PATH);
    if (publicKey && toHex(publicKey) !== signer.publicHex) {
      signer.forget();
      throw new KeyFileError("public_key_mismatch", "the file's public key is not the one its private key gives");
    }
    return signer;
  } finally {
    seed.fill(0);
    der.fill(0);
  }
}

/**
 * A Signer from the text of a PEM key file.
 * @param {string} text
 * @param {{backend?: "auto" | "webcrypto" | "noble", noblePath?: string}} [options]
 */
export async function signerFromPem(text, options = {}) {
  const der = parsePem(text);
  try {
    return await loadSigner(der, options);
  } finally {
    der.fill(0);
  }
}
