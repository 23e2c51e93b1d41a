// The "verified" marks of live.js against a real chain's replies, then hostile ones.
// tests/unit/test_console_live.py records every reply a node gives the marks
// (COMITY_LIVE_CASES) from a chain whose validator set changes by vote at
// `change_height`; here they are served to LiveVerifier as a node would, and edited as a
// lying node would. Each lie must fail with its own named reason; the truth must pass.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const store = new Map();
globalThis.sessionStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
};
const { LiveVerifier, getPin, setPin } = await import("../../../api/console/static/js/live.js");
const { jcs } = await import("../../../api/console/static/js/jcs.js");
const { toHex, fromHex } = await import("../../../api/console/static/js/sha256.js");

const path = process.env.COMITY_LIVE_CASES;
const cases = path ? JSON.parse(readFileSync(path, "utf8")) : null;
const skip = cases ? false : "run by tests/unit/test_console_live.py (COMITY_LIVE_CASES)";

/** A node serving the recorded replies; `edit(key, reply)` may change one as a liar would. */
function node(edit = (key, reply) => reply) {
  const calls = [];
  const get = async (p, params = {}) => {
    const query = Object.entries(params)
      .filter(([, v]) => v !== null && v !== undefined && v !== "")
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const key = query ? `${p}?${query}` : p;
    calls.push(key);
    if (!Object.hasOwn(cases.replies, key)) throw Object.assign(new Error(`404 ${key}`), { code: "not_found" });
    return edit(key, structuredClone(cases.replies[key]));
  };
  return { get, calls };
}

const block = (h) => structuredClone(cases.replies[`/v1/blocks/${h}`]);
const heights = () => Array.from({ length: cases.top }, (_, i) => i + 1);
const flip = (hex, at = 10) => hex.slice(0, at) + (hex[at] === "0" ? "1" : "0") + hex.slice(at + 1);

test("the true chain: every block verified, pinned to the genesis hash the reader gave", { skip }, async () => {
  const { get } = node();
  const verifier = new LiveVerifier(get, cases.genesis_hash);
  for (const h of heights()) {
    const mark = await verifier.mark(block(h));
    assert.equal(mark.ok, true, `${h}: ${mark.code} ${mark.detail}`);
    assert.equal(mark.pinned, true);
    assert.equal(mark.genesisHash, cases.genesis_hash);
  }
  // After the vote, five validators sign, BR among them: the set was replayed, not assumed.
  const after = await verifier.mark(block(cases.change_height));
  assert.match(after.detail, /^\d\/5: .*BR/);
  const before = await verifier.mark(block(cases.change_height - 1));
  assert.match(before.detail, /^\d\/4: /);
});

test("unpinned, the mark says it checks against the genesis the node serves", { skip }, async () => {
  const mark = await new LiveVerifier(node().get, null).mark(block(cases.top));
  assert.equal(mark.ok, true);
  assert.equal(mark.pinned, false);
  assert.equal(mark.genesisHash, cases.genesis_hash);
});

test("a pinned genesis that is not the node's: every block genesis_mismatch", { skip }, async () => {
  const verifier = new LiveVerifier(node().get, "ab".repeat(32));
  for (const h of [1, cases.top]) {
    const mark = await verifier.mark(block(h));
    assert.equal(mark.ok, false);
    assert.equal(mark.code, "genesis_mismatch");
  }
  assert.equal(setPin("not hex"), false);
  assert.equal(getPin(), null);
  assert.equal(setPin(` ${"AB".repeat(32)} `), true);
  assert.equal(getPin(), "ab".repeat(32));
});

test("one changed header byte: bad_header_hash; with the hash recomputed too: bad_certificate", { skip }, async () => {
  const verifier = new LiveVerifier(node().get, cases.genesis_hash);
  const changed = block(cases.top);
  changed.header.ledger_root = flip(changed.header.ledger_root);
  const mark = await verifier.mark(changed);
  assert.equal(mark.code, "bad_header_hash");
  const { headerHash } = await import("../../../api/console/static/js/bundle.js");
  changed.hash = await headerHash(changed.header);
  const again = await verifier.mark(changed);
  assert.equal(again.code, "bad_certificate");
  assert.match(again.detail, /certificate commits/);
  assert.equal((await verifier.mark(block(cases.top))).ok, true); // the true block still passes
});

test("a certificate under the quorum: bad_certificate, naming the quorum", { skip }, async () => {
  const verifier = new LiveVerifier(node().get, cases.genesis_hash);
  const short = block(cases.top);
  short.commit.signatures = short.commit.signatures.slice(0, 3); // 3 of 5: the quorum is 4
  const mark = await verifier.mark(short);
  assert.equal(mark.code, "bad_certificate");
  assert.match(mark.detail, /3 signatures, the quorum of 5 validators is 4/);
  const twice = block(2);
  twice.commit.signatures = [...twice.commit.signatures.slice(0, 2), twice.commit.signatures[0]];
  assert.match((await verifier.mark(twice)).detail, /signed twice/);
});

test("a certificate signed by a key that is not a validator: bad_certificate", { skip }, async () => {
  const keys = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const pubkey = toHex(new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey)));
  const forged = block(cases.top);
  const { chain_id: chainId } = cases.replies["/v1/genesis"];
  const message = jcs({ type: "precommit", chain_id: chainId, height: forged.header.height, round: forged.commit.round, block_hash: forged.hash });
  const signature = toHex(new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, keys.privateKey, message)));
  forged.commit.signatures[0] = { validator: pubkey, signature }; // a good signature, by an outsider
  const mark = await new LiveVerifier(node().get, cases.genesis_hash).mark(forged);
  assert.equal(mark.code, "bad_certificate");
  assert.match(mark.detail, /is not a validator of height/);
  const bad = block(cases.top);
  bad.commit.signatures[0].signature = flip(bad.commit.signatures[0].signature, 40);
  assert.match((await new LiveVerifier(node().get, cases.genesis_hash).mark(bad)).detail, /bad precommit signature/);
  assert.ok(fromHex(pubkey).length === 32);
});

test("a node hiding the vote that changed the set: later blocks bad_validators_hash", { skip }, async () => {
  const hiding = node((key, reply) => (key.startsWith("/v1/search?") && key.includes("type=member_vote") ? { results: [], next_cursor: null } : reply));
  const verifier = new LiveVerifier(hiding.get, cases.genesis_hash);
  assert.equal((await verifier.mark(block(cases.change_height - 1))).ok, true);
  const mark = await verifier.mark(block(cases.change_height));
  assert.equal(mark.ok, false);
  assert.equal(mark.code, "bad_validators_hash");
});

test("a governance record with a forged signature: the replay fails, and every mark after", { skip }, async () => {
  const lying = node((key, reply) => {
    if (key.includes("envelopes=true") && reply.envelopes.some((e) => e.record.type === "member_proposal")) {
      const e = reply.envelopes.find((x) => x.record.type === "member_proposal");
      e.signature = flip(e.signature, 20);
    }
    return reply;
  });
  const verifier = new LiveVerifier(lying.get, cases.genesis_hash);
  const mark = await verifier.mark(block(cases.top));
  assert.equal(mark.ok, false);
  assert.equal(mark.code, "bad_record_signature");
  assert.match(mark.detail, /validator-set chain/);
  assert.equal((await verifier.mark(block(1))).code, "bad_record_signature");
});

test("verified sets are cached: a second view of the chain asks the node for no proof again", { skip }, async () => {
  const { get, calls } = node();
  const verifier = new LiveVerifier(get, cases.genesis_hash);
  for (const h of heights()) await verifier.mark(block(h));
  const first = calls.length;
  assert.ok(calls.some((c) => c.includes("/proof")));
  for (const h of heights()) assert.equal((await verifier.mark(block(h))).ok, true);
  assert.equal(calls.length, first);
  const unreachable = new LiveVerifier(async () => {
    throw new TypeError("Failed to fetch");
  }, null);
  const mark = await unreachable.mark(block(1));
  assert.equal(mark.code, "unavailable");
  assert.equal(mark.transient, true);
  // A node whose status lags behind the block it served: said, and asked again next time.
  const lagging = node((key, reply) => (key === "/v1/status" ? { ...reply, height: cases.top - 1 } : reply));
  const behind = await new LiveVerifier(lagging.get, cases.genesis_hash).mark(block(cases.top));
  assert.equal(behind.code, "block_beyond_chain");
  assert.equal(behind.transient, true);
});

test("every record in its block: signed, and included under the certified root", { skip }, async () => {
  const verifier = new LiveVerifier(node().get, cases.genesis_hash);
  let n = 0;
  for (const h of heights()) {
    for (const id of block(h).record_ids) {
      const mark = await verifier.markRecord(id, block(h));
      assert.equal(mark.ok, true, `${h} ${id}: ${mark.code} ${mark.detail}`);
      assert.match(mark.detail, /signed and included at leaf \d+/);
      n += 1;
    }
  }
  assert.ok(n > 10);
});

test("a record the node changed, swapped, misplaced or proved wrongly: each named", { skip }, async () => {
  const h = cases.top;
  const [id] = block(h).record_ids;
  const other = block(h - 1).record_ids[0];
  const lie = (change) => new LiveVerifier(node((key, reply) => change(key, reply) ?? reply).get, cases.genesis_hash);
  const code = async (change, b = block(h)) => (await lie(change).markRecord(id, b)).code;
  assert.equal(await code((key, r) => { if (key === `/v1/records/${id}`) r.envelope.record.nonce += "x"; }), "bad_record_signature");
  assert.equal(await code((key) => (key === `/v1/records/${id}` ? structuredClone(cases.replies[`/v1/records/${other}`]) : null)), "record_not_in_block");
  assert.equal(
    await code((key) => {
      if (key !== `/v1/records/${id}`) return null;
      const swapped = structuredClone(cases.replies[`/v1/records/${other}`]);
      swapped.height = h;
      return swapped;
    }),
    "bad_envelope",
  );
  assert.equal(await code((key, r) => { if (key.startsWith(`/v1/records/${id}/proof`)) r.audit_path[0] = flip(r.audit_path[0]); }), "bad_inclusion_proof");
  assert.equal(await code((key, r) => { if (key.startsWith(`/v1/records/${id}/proof`)) r.leaf_index = 0; }), "bad_inclusion_proof");
  const broken = block(h);
  broken.commit.signatures = broken.commit.signatures.slice(0, 1);
  assert.equal(await code(() => null, broken), "bad_certificate"); // the block's failure first
});
