// SHA-256 through WebCrypto (crypto.subtle: every current browser, and Node 20), and hex.

/** @param {ArrayLike<number> & Iterable<number>} bytes */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Lowercase hex of exactly `size` bytes, as Comity writes hashes, keys and signatures.
 * @param {unknown} value
 * @param {number} size
 * @returns {value is string}
 */
export function isHex(value, size) {
  return typeof value === "string" && value.length === 2 * size && /^[0-9a-f]*$/.test(value);
}

/** @param {unknown} text @returns {Uint8Array<ArrayBuffer>} */
export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new TypeError("not hex");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {...Uint8Array} parts @returns {Uint8Array<ArrayBuffer>} */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** @param {Uint8Array} a @param {Uint8Array} b */
export function equalBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** @param {BufferSource} bytes @returns {Promise<Uint8Array<ArrayBuffer>>} */
export async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
}

/** @param {BufferSource} bytes @returns {Promise<string>} */
export async function sha256Hex(bytes) {
  return toHex(await sha256(bytes));
}
