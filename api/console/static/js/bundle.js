// The offline bundle check in the browser: a counterpart of ledger/audit/bundle.py's
// verify_bundle (docs/AUDIT.md "What bundle verify checks"), with the same failure codes.
//
// Blocks are walked in height order with the validator set of each height replayed from
// the genesis and the governance records of earlier blocks (gov.js): header shape and
// validators_hash, the commit certificate (a quorum of distinct validators of that height,
// every precommit signature), each entry's envelope, signature, inclusion proof under its
// own header and signer rights; every subject must be proven; the newer checkpoint
// (`latest`) must be certified and consistent with every block; private bodies must hash to
// their commitment; evidence hashes given by the reader must be a subject's evidence.
// `onCheck(check)` hears of each check as it passes, so a page can list them; the first
// failure throws AuditFailure with its code. Without a pinned genesis hash, nothing is proven
// about the real consortium, and the report says so (`pinned: false`).

import { AuditFailure, GovState, parseUtc, REPLAYED_TYPES } from "./gov.js";
import { CanonicalError, canonicalText, jcs } from "./jcs.js";
import { verifySignature } from "./ed25519.js";
import { leafHash, ProofError, verifyConsistency, verifyInclusion } from "./merkle.js";
import { concat, fromHex, isHex, sha256Hex } from "./sha256.js";

export { AuditFailure } from "./gov.js";

/** @typedef {import("./gov.js").ChainRecord} ChainRecord */
/** @typedef {import("./gov.js").Genesis} Genesis */
/** @typedef {import("./gov.js").Seat} Seat */
/** A JSON object read from a hostile file: its fields are checked before use. @typedef {Record<string, any>} JsonObject */
/** One check that passed, as the page lists it. @typedef {{check: string, height: number | null, detail: string}} Check */
/** @typedef {(check: Check) => void} OnCheck */
/** A local evidence file, hashed by the caller. @typedef {{name: string, sha256: string}} Evidence */
/** An envelope whose id and signature were checked. @typedef {{id: string, leaf: Uint8Array<ArrayBuffer>, signer: string, record: ChainRecord}} Item */
/**
 * A subject record, proven.
 * @typedef {{id: string, record: ChainRecord, signer: string, height: number, leafIndex: number,
 *   blockTime: string, committedBy: string[], evidenceFiles: string[], bodyChecked: boolean}} Proven
 */
/**
 * What verifyBundle proved.
 * @typedef {{chainId: string, genesisHash: string, records: Proven[], changes: string[], blocks: number,
 *   latest: [number, number] | null, pinned: boolean}} BundleReport
 */

export const FORMAT = "comity-bundle/1";
export const CASE_FORMAT = "comity-case/1";
export const UNPINNED = "genesis NOT pinned; this proves nothing";
export const HEADER_FIELDS = [
  "chain_id", "height", "time", "prev_hash", "proposer", "record_count", "ledger_size",
  "ledger_root", "validators_hash",
];
const GENESIS_FIELDS = ["chain_id", "genesis_time", "consensus", "members", "enrollments"];
const CONTENT_FIELDS = [
  "schema", "chain_id", "actor", "nonce", "occurred_at", "refs", "visibility", "parties",
  "retain_until",
];

/** @param {unknown} v @returns {v is JsonObject} */
const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
/** @param {object} obj @param {readonly string[]} names */
const sameKeys = (obj, names) =>
  Object.keys(obj).length === names.length && names.every((n) => Object.hasOwn(obj, n));

/** @param {unknown} doc @returns {Genesis} */
export function checkGenesis(doc) {
  if (!isObject(doc) || !["chain_id", "genesis_time", "members"].every((k) => Object.hasOwn(doc, k))) {
    throw new AuditFailure("bad_genesis", "genesis needs chain_id, genesis_time and members");
  }
  const unknown = Object.keys(doc).filter((k) => !GENESIS_FIELDS.includes(k));
  if (unknown.length) throw new AuditFailure("bad_genesis", `unknown genesis fields ${unknown.sort()}`);
  if (!isObject(doc.consensus) || !Object.hasOwn(doc.consensus, "proposal_expiry_blocks") || !Object.hasOwn(doc, "enrollments")) {
    throw new AuditFailure(
      "incomplete_genesis",
      "the genesis leaves out default consensus parameters or enrollments; use the document GET /v1/genesis serves",
    );
  }
  try {
    new GovState(doc);
  } catch (error) {
    throw new AuditFailure("bad_genesis", `malformed member or enrolment (${error instanceof Error ? error.message : String(error)})`);
  }
  return doc;
}

/** @param {unknown} value @param {string} code @param {string} what @param {number | null} height */
function canonical(value, code, what, height = null) {
  try {
    return jcs(value);
  } catch (error) {
    if (error instanceof CanonicalError) {
      throw new AuditFailure(code, `${what} is not canonical JSON: ${error.message}`, height);
    }
    throw error;
  }
}

/**
 * The reader's genesis file completed from the bundle's, as ledger/audit/chain.py's
 * complete_genesis: the consensus parameters (and enrollments) the file leaves out, as a
 * devnet's genesis.json does, are taken from `served`; any other difference is refused
 * (genesis_mismatch). Returns [completed, names filled in].
 */
/** @param {unknown} local @param {unknown} served @returns {[JsonObject, string[]]} */
export function completeGenesis(local, served) {
  if (!isObject(local)) throw new AuditFailure("bad_genesis", "the genesis file is not a JSON object");
  const out = { ...local };
  if (!Object.hasOwn(out, "enrollments")) out.enrollments = [];
  const consensus = isObject(local.consensus) ? { ...local.consensus } : {};
  const servedDoc = isObject(served) ? served : {};
  const servedConsensus = isObject(servedDoc.consensus) ? servedDoc.consensus : {};
  const filled = Object.keys(servedConsensus).filter((k) => !Object.hasOwn(consensus, k)).sort();
  for (const name of filled) consensus[name] = servedConsensus[name];
  out.consensus = consensus;
  const mine = canonical(out, "bad_genesis", "genesis");
  const theirs = canonical(servedDoc, "bad_genesis", "the bundle's genesis");
  if (mine.length !== theirs.length || mine.some((b, i) => b !== theirs[i])) {
    const keys = [...new Set([...Object.keys(out), ...Object.keys(servedDoc)])];
    const differ = keys.filter((k) => canonicalText(out[k] ?? null) !== canonicalText(servedDoc[k] ?? null)).sort();
    throw new AuditFailure(
      "genesis_mismatch", `the bundle's genesis differs from the genesis file beyond default parameters, in ${differ}`,
    );
  }
  return [out, filled];
}

/** @param {unknown} genesis @returns {Promise<string>} */
export async function genesisHash(genesis) {
  return sha256Hex(canonical(genesis, "bad_genesis", "genesis"));
}

/** @param {readonly Seat[]} seats @returns {Promise<string>} */
export async function validatorsHash(seats) {
  return sha256Hex(jcs(seats.map((s) => ({ state: s.state, pubkey: s.pubkey }))));
}

/** @param {JsonObject} header @returns {Promise<string>} */
export async function headerHash(header) {
  return sha256Hex(canonical(header, "bad_header", "header", header.height));
}

/** @param {unknown} header @param {number | null} height @returns {asserts header is JsonObject} */
export function checkHeaderShape(header, height = null) {
  if (!isObject(header) || !sameKeys(header, HEADER_FIELDS)) {
    const got = isObject(header) ? Object.keys(header).sort() : typeof header;
    throw new AuditFailure("bad_header", `header fields are ${got}`, height);
  }
  for (const name of ["height", "record_count", "ledger_size"]) {
    if (!Number.isSafeInteger(header[name]) || header[name] < 0) {
      throw new AuditFailure("bad_header", `header.${name} is not a non-negative integer`, height);
    }
  }
  for (const name of ["prev_hash", "ledger_root", "validators_hash"]) {
    if (!isHex(header[name], 32)) throw new AuditFailure("bad_header", `header.${name} is not 64 lowercase hex`, height);
  }
  for (const name of ["chain_id", "time", "proposer"]) {
    if (typeof header[name] !== "string") throw new AuditFailure("bad_header", `header.${name} is not a string`, height);
  }
}

/**
 * docs/PROTOCOL.md §9: the states that signed, or AuditFailure bad_certificate.
 * @param {unknown} cert @param {string} chainId @param {readonly Seat[]} seats @param {string} blockHash
 * @param {number} height @returns {Promise<string[]>}
 */
export async function checkCertificate(cert, chainId, seats, blockHash, height) {
  if (!isObject(cert) || !Array.isArray(cert.signatures) || !Number.isSafeInteger(cert.round)) {
    throw new AuditFailure("bad_certificate", "certificate is malformed", height);
  }
  if (cert.height !== height) {
    throw new AuditFailure("bad_certificate", `certificate is for height ${cert.height}`, height);
  }
  if (cert.block_hash !== blockHash) {
    throw new AuditFailure(
      "bad_certificate", `certificate commits ${cert.block_hash}, the block hash is ${blockHash}`, height,
    );
  }
  const byKey = new Map(seats.map((s) => [s.pubkey, s.state]));
  const message = jcs({ type: "precommit", chain_id: chainId, height, round: cert.round, block_hash: blockHash });
  /** @type {string[]} */
  const signed = [];
  for (const entry of cert.signatures) {
    const validator = isObject(entry) ? entry.validator : undefined;
    if (!byKey.has(validator)) {
      throw new AuditFailure(
        "bad_certificate", `signer ${String(validator).slice(0, 16)}… is not a validator of height ${height}`, height,
      );
    }
    const state = /** @type {string} */ (byKey.get(validator));
    if (signed.includes(state)) throw new AuditFailure("bad_certificate", `validator ${state} signed twice`, height);
    if (!(await verifySignature(validator, message, String(entry.signature)))) {
      throw new AuditFailure("bad_certificate", `bad precommit signature by ${state}`, height);
    }
    signed.push(state);
  }
  const need = Math.floor((2 * seats.length) / 3) + 1;
  if (signed.length < need) {
    throw new AuditFailure(
      "bad_certificate", `${signed.length} signatures, the quorum of ${seats.length} validators is ${need}`, height,
    );
  }
  return signed;
}

/**
 * Shape, id and signature of one envelope (PROTOCOL.md §3, §5).
 * @param {unknown} envelope @param {string} chainId @param {number} height @returns {Promise<Item>}
 */
export async function checkEnvelope(envelope, chainId, height) {
  if (!isObject(envelope) || !sameKeys(envelope, ["record", "signer", "signature"]) || !isObject(envelope.record)) {
    throw new AuditFailure("bad_envelope", "an envelope is not {record, signer, signature}", height);
  }
  const { record, signer, signature } = envelope;
  if (!isHex(signer, 32) || !isHex(signature, 64)) {
    throw new AuditFailure("bad_envelope", "signer or signature is not lowercase hex", height);
  }
  const recordBytes = canonical(record, "bad_envelope", "record", height);
  const id = await sha256Hex(recordBytes);
  if (!(await verifySignature(signer, recordBytes, signature))) {
    throw new AuditFailure(
      "bad_record_signature", `record ${id}: the signature by ${signer.slice(0, 16)}… does not verify`, height,
    );
  }
  if (record.chain_id !== chainId || !isObject(record.actor) || typeof record.type !== "string") {
    throw new AuditFailure("bad_record", `record ${id}: wrong chain_id or no actor/type`, height);
  }
  const text = new TextEncoder();
  const leaf = concat(
    text.encode('{"record":'), recordBytes, text.encode(`,"signature":"${signature}","signer":"${signer}"}`),
  );
  return { id, leaf, signer, record: /** @type {ChainRecord} */ (record) };
}

/** @param {GovState} gov @param {JsonObject} header @param {number} height */
async function seatsOf(gov, header, height) {
  const seats = gov.validators(height);
  if (header.validators_hash !== (await validatorsHash(seats))) {
    throw new AuditFailure(
      "bad_validators_hash",
      `the certified header's validators_hash is not the set ${JSON.stringify(seats.map((s) => s.state))} ` +
        "derived from genesis and the bundle's governance records: the validator-set chain is incomplete or forged",
      height,
    );
  }
  return seats;
}

/**
 * @param {unknown} entry @param {JsonObject} header @param {string} chainId @param {number} height
 * @returns {Promise<[Item, number]>}
 */
async function verifyEntry(entry, header, chainId, height) {
  if (!isObject(entry) || !Number.isSafeInteger(entry.leaf_index) || !Array.isArray(entry.audit_path) || !entry.audit_path.every((/** @type {unknown} */ h) => isHex(h, 32))) {
    throw new AuditFailure("bad_bundle", "an entry is not {envelope, leaf_index, audit_path (hex)}", height);
  }
  const item = await checkEnvelope(entry.envelope, chainId, height);
  try {
    await verifyInclusion(
      await leafHash(item.leaf), entry.leaf_index, header.ledger_size,
      entry.audit_path.map(fromHex), fromHex(header.ledger_root),
    );
  } catch (error) {
    if (!(error instanceof ProofError)) throw error;
    throw new AuditFailure("bad_inclusion_proof", `record ${item.id} at leaf ${entry.leaf_index}: ${error.message}`, height);
  }
  return [item, entry.leaf_index];
}

/**
 * @param {unknown} block @param {GovState} gov @param {string} chainId @param {number} previous
 * @param {OnCheck} onCheck
 * @returns {Promise<{height: number, signed: string[], checked: [Item, number][], header: JsonObject}>}
 */
export async function verifyBlock(block, gov, chainId, previous, onCheck) {
  if (!isObject(block) || !Array.isArray(block.entries)) {
    throw new AuditFailure("bad_bundle", "a block is not {header, commit, entries}");
  }
  const header = block.header;
  checkHeaderShape(header, null);
  const height = header.height;
  if (height <= previous) {
    throw new AuditFailure("blocks_out_of_order", `blocks are not in increasing height order (${height} after ${previous})`, height);
  }
  if (header.chain_id !== chainId) throw new AuditFailure("wrong_chain", `header.chain_id is ${header.chain_id}`, height);
  const seats = await seatsOf(gov, header, height);
  onCheck({ check: "validators_hash", height, detail: seats.map((s) => s.state).join(", ") });
  const signed = await checkCertificate(block.commit, chainId, seats, await headerHash(header), height);
  onCheck({ check: "certificate", height, detail: signed.join(", ") });
  /** @type {[Item, number][]} */
  const checked = [];
  const firstLeaf = header.ledger_size - header.record_count;
  const blockTime = parseUtc(header.time);
  for (const entry of block.entries) {
    const [item, leafIndex] = await verifyEntry(entry, header, chainId, height);
    const last = checked.at(-1);
    if (!(firstLeaf <= leafIndex && leafIndex < header.ledger_size) || (last !== undefined && leafIndex <= last[1])) {
      throw new AuditFailure(
        "bad_bundle",
        `entry at leaf ${leafIndex} is not a record of this block in order (leaves ${firstLeaf}..${header.ledger_size - 1})`,
        height,
      );
    }
    const refused = gov.authorise(height, blockTime, item.signer, item.record);
    if (refused !== null) throw new AuditFailure(refused[0], `record ${item.id}: ${refused[1]}`, height);
    onCheck({ check: "record", height, detail: `${item.id} (${item.record.type}): signature, inclusion at leaf ${leafIndex}, signer rights` });
    checked.push([item, leafIndex]);
  }
  return { height, signed, checked, header };
}

/**
 * @param {unknown} latest @param {GovState} gov @param {string} chainId @param {number} previous
 * @param {Map<number, [number, string]>} sizes @param {OnCheck} onCheck @returns {Promise<[number, number]>}
 */
async function verifyLatest(latest, gov, chainId, previous, sizes, onCheck) {
  if (!isObject(latest) || !Array.isArray(latest.consistency)) {
    throw new AuditFailure("bad_bundle", "latest is not {header, commit, consistency}");
  }
  const header = latest.header;
  checkHeaderShape(header, null);
  const height = header.height;
  if (height < previous || header.chain_id !== chainId) {
    throw new AuditFailure("bad_latest", `latest checkpoint ${height} is older than the blocks or of another chain`, height);
  }
  await checkCertificate(latest.commit, chainId, await seatsOf(gov, header, height), await headerHash(header), height);
  onCheck({ check: "latest_certificate", height, detail: `ledger size ${header.ledger_size}` });
  /** @type {Map<unknown, unknown>} */
  const proofs = new Map();
  for (const p of latest.consistency) if (isObject(p)) proofs.set(p.height, p.proof);
  for (const [blockHeight, [size, root]] of sizes) {
    const proof = proofs.get(blockHeight);
    if (!Array.isArray(proof) || !proof.every((/** @type {unknown} */ h) => isHex(h, 32))) {
      throw new AuditFailure("bad_consistency_proof", `no consistency proof from block ${blockHeight} to the latest checkpoint`, height);
    }
    try {
      await verifyConsistency(size, header.ledger_size, fromHex(root), fromHex(header.ledger_root), proof.map(fromHex));
    } catch (error) {
      if (!(error instanceof ProofError)) throw error;
      throw new AuditFailure(
        "bad_consistency_proof", `block ${blockHeight} (size ${size}) to latest (size ${header.ledger_size}): ${error.message}`, height,
      );
    }
    onCheck({ check: "consistency", height: blockHeight, detail: `size ${size} to ${header.ledger_size}` });
  }
  return [height, header.ledger_size];
}

/** @param {Proven} proven @param {unknown} bodies @returns {Promise<Proven>} */
async function withBody(proven, bodies) {
  const body = isObject(bodies) && Object.hasOwn(bodies, proven.id) ? bodies[proven.id] : undefined;
  if (body === undefined || body === null) return proven;
  const header = proven.record;
  if (header.type !== "private_act") {
    throw new AuditFailure("bad_bundle", `a body is given for ${proven.id}, which is not a private act`);
  }
  if (!isObject(body) || !sameKeys(body, ["act", "salt"]) || !isObject(body.act)) {
    throw new AuditFailure("bad_bundle", `the body of ${proven.id} is not {act, salt}`);
  }
  if ((await sha256Hex(canonical(body, "bad_bundle", "a private body"))) !== header.commitment) {
    throw new AuditFailure("body_mismatch", `the body given for ${proven.id} does not hash to its header's commitment`, proven.height);
  }
  const content = { ...body.act };
  for (const k of CONTENT_FIELDS) if (Object.hasOwn(header, k)) content[k] = header[k];
  return { ...proven, record: /** @type {ChainRecord} */ (content), bodyChecked: true };
}

/** @param {Proven[]} records @param {readonly Evidence[]} evidence */
function matchEvidence(records, evidence) {
  for (const { name, sha256 } of evidence) {
    const hits = records.filter((r) =>
      (Array.isArray(r.record.evidence) ? r.record.evidence : []).some((/** @type {unknown} */ e) => isObject(e) && e.sha256 === sha256));
    if (!hits.length) {
      throw new AuditFailure("evidence_mismatch", `${name}: SHA-256 ${sha256} is the evidence of no record in the bundle`);
    }
    for (const r of hits) r.evidenceFiles.push(name);
  }
  return records;
}

/**
 * Check everything a bundle claims; throws AuditFailure at the first failure.
 * `pinnedGenesisHash`: the consortium's genesis hash as the reader knows it.
 * `evidence`: [{name, sha256}] of local files (hashed by the caller, never uploaded).
 * @param {unknown} bundle
 * @param {{pinnedGenesisHash?: string | null, evidence?: readonly Evidence[], onCheck?: OnCheck}} options
 * @returns {Promise<BundleReport>}
 */
export async function verifyBundle(bundle, { pinnedGenesisHash = null, evidence = [], onCheck = () => {} } = {}) {
  if (!isObject(bundle) || ![FORMAT, CASE_FORMAT].includes(bundle.format)) {
    throw new AuditFailure("bad_bundle", `not a ${FORMAT} (or ${CASE_FORMAT}) document`);
  }
  for (const name of ["records", "blocks"]) {
    if (!Array.isArray(bundle[name]) || !bundle[name].length) {
      throw new AuditFailure("bad_bundle", `bundle.${name} must be a non-empty list`);
    }
  }
  if (!bundle.records.every((/** @type {unknown} */ rid) => typeof rid === "string")) {
    throw new AuditFailure("bad_bundle", "bundle.records must be record ids");
  }
  const genesis = checkGenesis(bundle.genesis);
  /** @type {BundleReport} */
  const report = {
    chainId: genesis.chain_id, genesisHash: await genesisHash(genesis), records: [], changes: [],
    blocks: 0, latest: null, pinned: false,
  };
  if (pinnedGenesisHash !== null) {
    if (report.genesisHash !== pinnedGenesisHash) {
      throw new AuditFailure(
        "genesis_mismatch", `the bundle's genesis hashes to ${report.genesisHash}, not the pinned ${pinnedGenesisHash}`,
      );
    }
    report.pinned = true;
    onCheck({ check: "genesis_pinned", height: null, detail: report.genesisHash });
  }
  const gov = new GovState(genesis);
  /** @type {string[]} */
  const subjectIds = bundle.records;
  const subjects = new Set(subjectIds);
  /** @type {Map<string, Proven>} */
  const proven = new Map();
  /** @type {Map<number, [number, string]>} */
  const sizes = new Map();
  let previous = 0;
  for (const block of bundle.blocks) {
    const { height, signed, checked, header } = await verifyBlock(block, gov, report.chainId, previous, onCheck);
    previous = height;
    sizes.set(height, [header.ledger_size, header.ledger_root]);
    for (const [item, leafIndex] of checked) {
      if (subjects.has(item.id)) {
        proven.set(item.id, {
          id: item.id, record: item.record, signer: item.signer, height, leafIndex,
          blockTime: header.time, committedBy: signed, evidenceFiles: [], bodyChecked: false,
        });
      }
    }
    const before = gov.changes.length;
    gov.applyBlock(height, checked.filter(([c]) => REPLAYED_TYPES.includes(c.record.type)).map(([c]) => [c.id, c.record]));
    for (const c of gov.changes.slice(before)) {
      report.changes.push(`${c.action} ${c.state}: validators from height ${c.height} (decided at ${c.decidedAt} by ${c.recordIds.length} record(s))`);
    }
    report.blocks += 1;
  }
  const missing = subjectIds.filter((rid) => !proven.has(rid));
  if (missing.length) throw new AuditFailure("record_not_proven", `records ${missing} are in no block of the bundle`);
  onCheck({ check: "subjects_proven", height: null, detail: `${bundle.records.length} record(s)` });
  if (bundle.latest !== undefined && bundle.latest !== null) {
    report.latest = await verifyLatest(bundle.latest, gov, report.chainId, previous, sizes, onCheck);
  }
  const bodies = bundle.private;
  if (bodies !== undefined && bodies !== null && (!isObject(bodies) || !Object.keys(bodies).every((k) => subjects.has(k)))) {
    throw new AuditFailure("bad_bundle", "bundle.private must map subject record ids to bodies");
  }
  const records = [];
  for (const rid of subjectIds) records.push(await withBody(/** @type {Proven} */ (proven.get(rid)), bodies));
  report.records = matchEvidence(records, evidence);
  if (evidence.length) onCheck({ check: "evidence", height: null, detail: evidence.map((e) => e.name).join(", ") });
  return report;
}
