// The console's key loading and signing against the Python code, case by case.
// tests/unit/test_console_sign.py writes the cases (COMITY_SIGN_CASES) from ledger/keys.py,
// PyNaCl, node/authoring.py, ledger/private.py and ledger/retention.py, then runs this file
// once per backend (cases.backend: "webcrypto", or "noble" to force the fallback signer).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { KeyFileError, parsePem, signerFromPem } from "../../../api/console/static/js/keys.js";
import { ACT_TYPES, RETENTION_DAYS, completeRecord, defaultRetainUntil, formatTime, signEnvelope, splitPrivate, submission } from "../../../api/console/static/js/sign.js";
import { jcs } from "../../../api/console/static/js/jcs.js";
import { fromHex, toHex } from "../../../api/console/static/js/sha256.js";

const path = process.env.COMITY_SIGN_CASES;
const cases = path ? JSON.parse(readFileSync(path, "utf8")) : null;
const skip = cases ? false : "run by tests/unit/test_console_sign.py (COMITY_SIGN_CASES)";
const options = () => ({ backend: cases.backend });
const refParties = async (ref) => cases.ref_parties[ref];
const seed7 = () => {
  // The PEM of the seed 07…07, as ledger/keys.py writes it (v1 PKCS#8).
  const der = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...new Array(32).fill(7)]);
  return `-----BEGIN PRIVATE KEY-----\n${Buffer.from(der).toString("base64")}\n-----END PRIVATE KEY-----\n`;
};

test("a ledger/keys.py PEM file gives PyNaCl's public key and signatures", { skip }, async () => {
  assert.ok(cases.keys.good.length >= 4);
  for (const key of cases.keys.good) {
    const signer = await signerFromPem(key.pem, options());
    assert.equal(signer.backend, cases.backend);
    assert.equal(signer.publicHex, key.public);
    for (const s of key.signatures) assert.equal(toHex(await signer.sign(fromHex(s.message))), s.signature);
    signer.forget();
    await assert.rejects(signer.sign(new Uint8Array(1)), (e) => e.code === "key_forgotten");
  }
});

test("RFC 8410 v2 keys (with the public key, with attributes) and CRLF files are read", { skip }, async () => {
  for (const c of cases.keys.accepted) assert.equal((await signerFromPem(c.pem, options())).publicHex, c.public, c.name);
});

test("hostile key files are refused with the reason named", { skip }, async () => {
  assert.ok(cases.keys.refused.length >= 15);
  for (const c of cases.keys.refused) {
    await assert.rejects(signerFromPem(c.pem, options()), (e) => e instanceof KeyFileError && e.code === c.code, `${c.name}: expected ${c.code}`);
  }
  assert.throws(() => parsePem(42), (e) => e.code === "not_pem");
});

test("completeRecord and formatTime write what node/authoring.py writes", { skip }, async () => {
  for (const t of cases.times) assert.equal(formatTime(new Date(t.iso)), t.formatted, t.iso);
  for (const c of cases.sign) {
    const done = completeRecord(c.record, { chainId: cases.chain_id, nonce: c.nonce, now: new Date(cases.now) });
    assert.equal(toHex(jcs(done)), c.completed);
  }
  const filled = completeRecord({ type: "preservation_request" }, { chainId: "x" });
  assert.match(filled.nonce, /^[0-9a-f]{32}$/);
  assert.match(filled.occurred_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(filled.schema, "comity/1");
});

test("retention defaults and the act types are ledger/retention.py's and ledger/private.py's", { skip }, async () => {
  assert.deepEqual({ ...RETENTION_DAYS }, cases.retention);
  assert.deepEqual([...ACT_TYPES].sort(), cases.act_types);
  for (const c of cases.sign) {
    const done = completeRecord(c.record, { chainId: cases.chain_id, nonce: c.nonce, now: new Date(cases.now) });
    assert.equal(defaultRetainUntil(done), c.retain_until);
  }
  assert.throws(() => defaultRetainUntil({ type: "enroll_key", occurred_at: cases.now }), (e) => e.code === "unknown_type");
});

test("a private act's header, body, commitment and parties are ledger/private.py split's", { skip }, async () => {
  for (const c of cases.sign) {
    const done = completeRecord(c.record, { chainId: cases.chain_id, nonce: c.nonce, now: new Date(cases.now) });
    const { header, body } = await splitPrivate(done, { retainUntil: c.retain_until, refParties, salt: c.salt });
    assert.equal(toHex(jcs(body)), c.body);
    assert.equal(toHex(jcs(header)), c.header);
    assert.deepEqual(header.parties, c.parties);
    assert.equal(header.commitment, c.commitment);
  }
  await assert.rejects(splitPrivate({ type: "enroll_key" }, { retainUntil: cases.now, refParties }), (e) => e.code === "not_an_act");
});

test("the submission is byte for byte what comity submit sends, private and consortium", { skip }, async () => {
  const signer = await signerFromPem(seed7(), options());
  assert.equal(signer.publicHex, cases.seed7_public);
  for (const c of cases.sign) {
    const done = completeRecord(c.record, { chainId: cases.chain_id, nonce: c.nonce, now: new Date(cases.now) });
    assert.equal(toHex(jcs(await submission(signer, done, { visibility: "parties", refParties, salt: c.salt }))), c.private);
    assert.equal(toHex(jcs(await submission(signer, done, { visibility: "consortium", refParties }))), c.consortium);
  }
});

test("a fresh salt each time: two private submissions of one act commit differently", { skip }, async () => {
  const signer = await signerFromPem(seed7(), options());
  const c = cases.sign[0];
  const done = completeRecord(c.record, { chainId: cases.chain_id, nonce: c.nonce, now: new Date(cases.now) });
  const a = await submission(signer, done, { visibility: "parties", refParties });
  const b = await submission(signer, done, { visibility: "parties", refParties });
  assert.match(a.private.salt, /^[0-9a-f]{32}$/);
  assert.notEqual(a.private.salt, b.private.salt);
  assert.notEqual(a.record.commitment, b.record.commitment);
});

test("an envelope signs JCS(record) and names the signer", { skip }, async () => {
  const signer = await signerFromPem(seed7(), options());
  const envelope = await signEnvelope(signer, { b: 1, a: "é" });
  assert.deepEqual(Object.keys(envelope), ["record", "signer", "signature"]);
  assert.equal(envelope.signer, cases.seed7_public);
  assert.match(envelope.signature, /^[0-9a-f]{128}$/);
});

test("the browser store seals a key under its passphrase, bound to its name", { skip }, async () => {
  const { KeyStoreError, PBKDF2_ITERATIONS, openKey, sealKey } = await import("../../../api/console/static/js/keystore.js");
  assert.ok(PBKDF2_ITERATIONS >= 600_000);
  const der = Buffer.from(seed7().split("\n")[1], "base64");
  const sealed = await sealKey(new Uint8Array(der), cases.seed7_public, "CN investigator", "correct horse battery");
  assert.equal(sealed.iterations, PBKDF2_ITERATIONS);
  assert.match(sealed.salt, /^[0-9a-f]{32}$/);
  assert.match(sealed.iv, /^[0-9a-f]{24}$/);
  assert.ok(!sealed.ciphertext.includes(toHex(new Uint8Array(32).fill(7))), "the seed is not in clear");
  assert.deepEqual(Buffer.from(await openKey(sealed, "correct horse battery")), der);
  const again = await sealKey(new Uint8Array(der), cases.seed7_public, "CN investigator", "correct horse battery");
  assert.notEqual(again.salt, sealed.salt);
  assert.notEqual(again.ciphertext, sealed.ciphertext);
  const refused = (e) => e instanceof KeyStoreError && e.code === "bad_passphrase";
  await assert.rejects(openKey(sealed, "wrong horse battery"), refused);
  await assert.rejects(openKey({ ...sealed, label: "TH authority" }, "correct horse battery"), refused);
  await assert.rejects(openKey({ ...sealed, publicHex: "00".repeat(32) }, "correct horse battery"), refused);
  await assert.rejects(openKey({ ...sealed, iterations: 1000 }, "correct horse battery"), (e) => e.code === "bad_entry");
  await assert.rejects(sealKey(new Uint8Array(der), cases.seed7_public, "x", "short"), (e) => e.code === "weak_passphrase");
  await assert.rejects(sealKey(new Uint8Array(der), cases.seed7_public, "", "long enough"), (e) => e.code === "bad_label");
  await assert.rejects(sealKey(new Uint8Array(der), cases.seed7_public, "a\nb", "long enough"), (e) => e.code === "bad_label");
});

test("without WebCrypto's Ed25519 and without the fallback file, the page says so", { skip }, async () => {
  await assert.rejects(
    signerFromPem(seed7(), { backend: "noble", noblePath: "../vendor/absent-signer.js" }),
    (e) => e instanceof KeyFileError && e.code === "ed25519_unavailable" && /not installed/.test(e.message),
  );
});
