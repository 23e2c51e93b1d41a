// The browser's RFC 6962 verifier against the published vectors in tests/vectors/rfc6962
// (the same files tests/unit/test_merkle_vectors.py feeds ledger/merkle.py), hostile ones
// included: a vector with wantErr must be refused with ProofError, every other must pass.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { ProofError, RootMismatchError, verifyConsistency, verifyInclusion } from "../../api/console/static/js/merkle.js";

const VECTORS = fileURLToPath(new URL("../vectors/rfc6962/", import.meta.url));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".json") ? [path] : [];
  });
}

const b64 = (text) => (text === null || text === undefined ? null : new Uint8Array(Buffer.from(text, "base64")));

async function outcome(run) {
  try {
    await run();
    return "ok";
  } catch (error) {
    assert.ok(error instanceof ProofError, `not a ProofError: ${error}`);
    return "refused";
  }
}

for (const kind of ["inclusion", "consistency"]) {
  const paths = files(join(VECTORS, kind));
  test(`${kind}: ${paths.length} published vectors`, async () => {
    assert.ok(paths.length > 50, "the vectors are missing");
    let hostile = 0;
    for (const path of paths) {
      const v = JSON.parse(readFileSync(path, "utf8"));
      const proof = (v.proof ?? []).map(b64);
      const run = kind === "inclusion"
        ? () => verifyInclusion(b64(v.leafHash) ?? new Uint8Array(), v.leafIdx, v.treeSize, proof, b64(v.root) ?? new Uint8Array())
        : () => verifyConsistency(v.size1, v.size2, b64(v.root1) ?? new Uint8Array(), b64(v.root2) ?? new Uint8Array(), proof);
      assert.equal(await outcome(run), v.wantErr ? "refused" : "ok", `${path}: ${v.desc}`);
      hostile += v.wantErr ? 1 : 0;
    }
    assert.ok(hostile > paths.length / 2, "the hostile vectors are missing");
  });
}

test("a flipped bit is a RootMismatchError naming both roots", async () => {
  const leaf = new Uint8Array(32);
  const sibling = new Uint8Array(32).fill(7);
  const { nodeHash } = await import("../../api/console/static/js/merkle.js");
  const root = await nodeHash(leaf, sibling);
  await verifyInclusion(leaf, 0, 2, [sibling], root);
  root[31] ^= 1;
  await assert.rejects(verifyInclusion(leaf, 0, 2, [sibling], root), RootMismatchError);
  await assert.rejects(verifyInclusion(leaf, 0, 2, [sibling, sibling], root), /expected 1/);
  await assert.rejects(verifyInclusion(leaf, 2 ** 53, 2 ** 53, [], root), /not an integer/);
});
