// The browser's key store: a signing key kept on this machine between visits, encrypted
// under a passphrase, in IndexedDB (never localStorage, never sent anywhere).
//
// A stored key is its PKCS#8 bytes sealed with AES-256-GCM under a key derived from the
// passphrase by PBKDF2-SHA-256 (600,000 iterations, the OWASP 2023 figure for
// PBKDF2-HMAC-SHA256), with a fresh 16-byte salt and 12-byte IV per save. The public key
// and the label are bound as the GCM additional data, so an entry's name cannot be swapped
// onto another entry's ciphertext. Unlocking gives a Signer for this tab only (keys.js);
// the decrypted bytes are zeroed once imported.

import { loadSigner } from "./keys.js";
import { fromHex, toHex } from "./sha256.js";

export const PBKDF2_ITERATIONS = 600_000;
const DB_NAME = "comity-keys";
const STORE = "keys";
export const LABEL_CHARS_MAX = 100;
export const STORED_KEYS_MAX = 50;

/** A refusal of the store: `code` is stable. */
export class KeyStoreError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * @typedef {object} SealedKey
 * @property {string} id         `${publicHex}:${label}`
 * @property {string} publicHex
 * @property {string} label
 * @property {number} iterations
 * @property {string} salt       hex, 16 bytes
 * @property {string} iv         hex, 12 bytes
 * @property {string} ciphertext hex
 */

/** @param {string} publicHex @param {string} label */
const boundData = (publicHex, label) => new TextEncoder().encode(`comity-key/1\n${publicHex}\n${label}`);

/**
 * @param {string} passphrase @param {Uint8Array} salt @param {number} iterations
 * @returns {Promise<CryptoKey>}
 */
async function wrappingKey(passphrase, salt, iterations) {
  const subtle = globalThis.crypto.subtle;
  const base = await subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt: /** @type {BufferSource} */ (salt), iterations }, base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** @param {string} label */
function checkLabel(label) {
  if (typeof label !== "string" || !label.trim() || label.length > LABEL_CHARS_MAX || /[\u0000-\u001f\u007f]/.test(label)) {
    throw new KeyStoreError("bad_label", `a label is 1-${LABEL_CHARS_MAX} characters, no control characters`);
  }
}

/**
 * Seal PKCS#8 bytes under a passphrase (pure: no storage).
 * @param {Uint8Array} der @param {string} publicHex @param {string} label @param {string} passphrase
 * @param {number} [iterations]
 * @returns {Promise<SealedKey>}
 */
export async function sealKey(der, publicHex, label, passphrase, iterations = PBKDF2_ITERATIONS) {
  checkLabel(label);
  if (typeof passphrase !== "string" || passphrase.length < 8) throw new KeyStoreError("weak_passphrase", "the passphrase must have 8 characters or more");
  const salt = globalThis.crypto.getRandomValues(new Uint8Array(16));
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const key = await wrappingKey(passphrase, salt, iterations);
  const sealed = await globalThis.crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: boundData(publicHex, label) }, key, /** @type {BufferSource} */ (der));
  return { id: `${publicHex}:${label}`, publicHex, label, iterations, salt: toHex(salt), iv: toHex(iv), ciphertext: toHex(new Uint8Array(sealed)) };
}

/**
 * The PKCS#8 bytes of a sealed key; a wrong passphrase (or a changed entry) is `bad_passphrase`.
 * @param {SealedKey} entry @param {string} passphrase
 * @returns {Promise<Uint8Array>}
 */
export async function openKey(entry, passphrase) {
  if (!Number.isSafeInteger(entry.iterations) || entry.iterations < PBKDF2_ITERATIONS) throw new KeyStoreError("bad_entry", "the stored key's iteration count is below 600,000");
  const key = await wrappingKey(passphrase, fromHex(entry.salt), entry.iterations);
  try {
    const plain = await globalThis.crypto.subtle.decrypt({ name: "AES-GCM", iv: fromHex(entry.iv), additionalData: boundData(entry.publicHex, entry.label) }, key, fromHex(entry.ciphertext));
    return new Uint8Array(plain);
  } catch {
    throw new KeyStoreError("bad_passphrase", "wrong passphrase, or the stored entry was changed");
  }
}

// --- IndexedDB ---------------------------------------------------------------------------

/** @returns {Promise<IDBDatabase>} */
function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new KeyStoreError("store_unavailable", "this browser's IndexedDB cannot be opened"));
  });
}

/**
 * @template T
 * @param {"readonly" | "readwrite"} mode
 * @param {(store: IDBObjectStore) => IDBRequest} action
 * @returns {Promise<T>}
 */
async function transaction(mode, action) {
  const db = await database();
  try {
    return await new Promise((resolve, reject) => {
      const request = action(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(new KeyStoreError("store_failed", String(request.error?.name ?? "error")));
    });
  } finally {
    db.close();
  }
}

/** The stored keys' names (public key and label), never their bytes.
 * @returns {Promise<{id: string, publicHex: string, label: string}[]>} */
export async function listKeys() {
  /** @type {SealedKey[]} */
  const all = await transaction("readonly", (store) => store.getAll());
  return all.map(({ id, publicHex, label }) => ({ id, publicHex, label }));
}

/**
 * Keep a key in this browser under a passphrase.
 * @param {Uint8Array} der @param {string} publicHex @param {string} label @param {string} passphrase
 */
export async function saveKey(der, publicHex, label, passphrase) {
  if ((await listKeys()).length >= STORED_KEYS_MAX) throw new KeyStoreError("store_full", `at most ${STORED_KEYS_MAX} keys are kept`);
  const entry = await sealKey(der, publicHex, label, passphrase);
  await transaction("readwrite", (store) => store.put(entry));
  return entry.id;
}

/**
 * Unlock a stored key for this tab.
 * @param {string} id @param {string} passphrase
 */
export async function unlockKey(id, passphrase) {
  /** @type {SealedKey | undefined} */
  const entry = await transaction("readonly", (store) => store.get(id));
  if (!entry) throw new KeyStoreError("unknown_key", "no such stored key");
  return loadSigner(await openKey(entry, passphrase));
}

/** @param {string} id */
export async function deleteKey(id) {
  await transaction("readwrite", (store) => store.delete(id));
}
