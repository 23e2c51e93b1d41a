// RFC 6962 inclusion and consistency proof verification, as ledger/merkle.py: free
// functions over byte arrays that throw ProofError (RootMismatchError when the proof
// is well-formed but leads elsewhere). Sizes and indices are Numbers that must be safe
// non-negative integers (Comity's JSON subset); the bit arithmetic runs on BigInt.

import { concat, equalBytes, sha256, toHex } from "./sha256.js";

export const HASH_SIZE = 32;

export class ProofError extends Error {}

export class RootMismatchError extends ProofError {
  /** @param {Uint8Array} expected @param {Uint8Array} calculated */
  constructor(expected, calculated) {
    super(`calculated root ${toHex(calculated)}, expected ${toHex(expected)}`);
    this.expected = expected;
    this.calculated = calculated;
  }
}

/** @param {Uint8Array} leaf */
export async function leafHash(leaf) {
  return sha256(concat(Uint8Array.of(0), leaf));
}

/** @param {Uint8Array} left @param {Uint8Array} right */
export async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

/** @param {string} name @param {number} value */
function size(name, value) {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ProofError(`${name} ${value} is not an integer in [0, 2^53 - 1]`);
  }
  return BigInt(value);
}

/** @param {unknown} value @param {string} what @returns {asserts value is Uint8Array} */
function checkHash(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    const length = value instanceof Uint8Array || Array.isArray(value) ? value.length : undefined;
    throw new ProofError(`${what} has ${length} bytes, expected ${HASH_SIZE}`);
  }
}

/** @param {bigint} n */
function bitLength(n) {
  return n === 0n ? 0 : n.toString(2).length;
}

/** @param {bigint} n */
function bitCount(n) {
  return [...n.toString(2)].filter((c) => c === "1").length;
}

/**
 * [inner, border]: how the audit path of `index` in a tree of `treeSize` splits.
 * @param {bigint} index @param {bigint} treeSize @returns {[number, number]}
 */
function pathShape(index, treeSize) {
  const inner = bitLength(index ^ (treeSize - 1n));
  return [inner, bitCount(index >> BigInt(inner))];
}

/**
 * @param {Uint8Array} leaf @param {number} leafIndex @param {number} treeSize
 * @param {readonly Uint8Array[]} proof @returns {Promise<Uint8Array>}
 */
export async function rootFromInclusion(leaf, leafIndex, treeSize, proof) {
  const n = size("size", treeSize);
  const index = size("index", leafIndex);
  if (index >= n) throw new ProofError(`index ${leafIndex} is not below size ${treeSize}`);
  checkHash(leaf, "leaf hash");
  proof.forEach((h, i) => checkHash(h, `proof[${i}]`));
  const [inner, border] = pathShape(index, n);
  if (proof.length !== inner + border) {
    throw new ProofError(
      `proof has ${proof.length} hashes, expected ${inner + border} for index ${leafIndex} in size ${treeSize}`,
    );
  }
  let calculated = leaf;
  for (const [level, sibling] of proof.entries()) {
    if (level < inner && !((index >> BigInt(level)) & 1n)) {
      calculated = await nodeHash(calculated, sibling);
    } else {
      calculated = await nodeHash(sibling, calculated);
    }
  }
  return calculated;
}

/**
 * @param {Uint8Array} leaf @param {number} leafIndex @param {number} treeSize
 * @param {readonly Uint8Array[]} proof @param {Uint8Array} root @returns {Promise<void>}
 */
export async function verifyInclusion(leaf, leafIndex, treeSize, proof, root) {
  checkHash(root, "root");
  const calculated = await rootFromInclusion(leaf, leafIndex, treeSize, proof);
  if (!equalBytes(calculated, root)) throw new RootMismatchError(root, calculated);
}

/**
 * @param {number} size1 @param {number} size2 @param {Uint8Array} root1 @param {Uint8Array} root2
 * @param {readonly Uint8Array[]} proof @returns {Promise<void>}
 */
export async function verifyConsistency(size1, size2, root1, root2, proof) {
  const m = size("size1", size1);
  const n = size("size2", size2);
  if (m > n) throw new ProofError(`size1 ${size1} > size2 ${size2}`);
  if (m === 0n) {
    throw new ProofError(`size1 is 0: there is no consistency to prove with size2 ${size2}`);
  }
  if (m === n) {
    if (proof.length) {
      throw new ProofError(`proof has ${proof.length} hashes, expected 0 for size1 == size2`);
    }
    if (!equalBytes(root1, root2)) throw new RootMismatchError(root2, root1);
    return;
  }
  checkHash(root1, "root1");
  checkHash(root2, "root2");
  proof.forEach((h, i) => checkHash(h, `proof[${i}]`));
  const level = BigInt(bitLength(m & -m) - 1);
  const index = (m - 1n) >> level;
  const [inner, border] = pathShape(index, ((n - 1n) >> level) + 1n);
  const seeded = index === 0n;
  const expected = inner + border + (seeded ? 0 : 1);
  if (proof.length !== expected) {
    throw new ProofError(
      `proof has ${proof.length} hashes, expected ${expected} for size1 ${size1} and size2 ${size2}`,
    );
  }
  const first = proof[0];
  if (!seeded && first === undefined) throw new ProofError("proof is empty"); // the length check above rules it out
  const [seed, path] = seeded || first === undefined ? [root1, proof] : [first, proof.slice(1)];
  let calculated1 = seed;
  let calculated2 = seed;
  for (const [position, sibling] of path.entries()) {
    if (position >= inner || (index >> BigInt(position)) & 1n) {
      calculated1 = await nodeHash(sibling, calculated1); // a left sibling: in the old tree
      calculated2 = await nodeHash(sibling, calculated2);
    } else {
      calculated2 = await nodeHash(calculated2, sibling); // leaves appended after size1
    }
  }
  if (!equalBytes(calculated1, root1)) throw new RootMismatchError(root1, calculated1);
  if (!equalBytes(calculated2, root2)) throw new RootMismatchError(root2, calculated2);
}
