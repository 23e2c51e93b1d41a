// Records signed in the browser, byte for byte as the Python CLI makes them (issue 21).
//
// `completeRecord` is node/authoring.py's complete_record, `signEnvelope` its
// sign_envelope (docs/PROTOCOL.md §3-§5: {record, signer, signature}, Ed25519 over
// JCS(record)); `splitPrivate` is ledger/private.py's split (§14: the header
// `private_act`, the body {act, salt}, the commitment SHA-256(JCS(body)), and `parties`
// derived by the rule of §14.3, never chosen); `submission` is what `comity submit`
// sends for a record. tests/unit/test_console_sign.py feeds the same inputs to both and
// compares the bytes. Nothing here touches the DOM; `submit` and `waitCommitted` are the
// only calls to the node.

import { ApiError, get, post } from "./api.js";
import { TYPE_CLASSES } from "./gov.js";
import { jcs } from "./jcs.js";
import { sha256Hex, toHex } from "./sha256.js";

export const SCHEMA = "comity/1";
export const HEADER_TYPE = "private_act";
export const SALT_BYTES = 16;
/** ledger/records.py CONTENT_FIELDS: what a private act's content takes from its header. */
export const COMMON_FIELDS = ["schema", "chain_id", "actor", "nonce", "occurred_at", "refs", "visibility", "parties", "retain_until"];
const HEADER_FIELDS = new Set([...COMMON_FIELDS, "type", "class", "commitment"]);
/** Every act type (ledger/private.py ACT_TYPES): the union of the type classes. */
export const ACT_TYPES = new Set(Object.values(TYPE_CLASSES).flat());

const SHORT = 365;
const CASE = 1826;
const EVIDENCE = 3653;
/** ledger/retention.py RETENTION_DAYS: how long the parties keep a private body, per type.
 * @type {Record<string, number>} */
export const RETENTION_DAYS = {
  emergency_disclosure: SHORT, preservation_request: SHORT, epoc_pr: SHORT, spontaneous_information: SHORT,
  mla_request: CASE, mla_response: CASE, production_order: CASE, eio: CASE, epoc: CASE, art32_access: CASE,
  joint_investigation: CASE, online_extraction: EVIDENCE, remote_inspection: EVIDENCE, technical_measure: EVIDENCE,
  search_seizure: EVIDENCE, realtime_collection: EVIDENCE, video_conference: EVIDENCE, custody_event: EVIDENCE,
  sovereignty_response: EVIDENCE, conditions_acknowledgement: EVIDENCE, direct_provider_request: CASE,
  jit_agreement: CASE, preservation_response: EVIDENCE, traffic_path_disclosure: EVIDENCE,
  provider_request_answer: EVIDENCE, epoc_enforcing_decision: EVIDENCE, addressee_report: EVIDENCE,
  eio_response: EVIDENCE, jit_accession: EVIDENCE, exchange_receipt: EVIDENCE,
};

/** @typedef {Record<string, any>} Json */
/** @typedef {import("./keys.js").Signer} Signer */

/**
 * RFC 3339 UTC with millisecond precision, as ledger/records.py format_time writes it.
 * @param {Date} moment
 */
export function formatTime(moment) {
  return moment.toISOString();
}

/** 16 random bytes as 32 hex (secrets.token_hex(16)). */
export function newNonce() {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * Fill the common fields a form leaves out: schema, chain, nonce, time (complete_record).
 * @param {Json} record @param {{chainId: string, now?: Date, nonce?: string}} context
 * @returns {Json}
 */
export function completeRecord(record, { chainId, now = new Date(), nonce = newNonce() }) {
  const out = { ...record };
  if (!("schema" in out)) out.schema = SCHEMA;
  if (!("chain_id" in out)) out.chain_id = chainId;
  if (!("nonce" in out)) out.nonce = nonce;
  if (!("occurred_at" in out)) out.occurred_at = formatTime(now);
  return out;
}

/**
 * The envelope of a record: Ed25519 over its RFC 8785 bytes.
 * @param {Signer} signer @param {Json} record
 * @returns {Promise<{record: Json, signer: string, signature: string}>}
 */
export async function signEnvelope(signer, record) {
  const signature = await signer.sign(jcs(record));
  return { record, signer: signer.publicHex, signature: toHex(signature) };
}

/**
 * occurred_at plus the type's retention (ledger/retention.py default_retain_until).
 * @param {Json} record
 */
export function defaultRetainUntil(record) {
  const days = Object.hasOwn(RETENTION_DAYS, record.type) ? RETENTION_DAYS[record.type] : undefined;
  if (days === undefined) throw new ApiError(0, "unknown_type", "record.type", `record.type ${record.type} has no retention default`);
  const when = new Date(record.occurred_at);
  if (Number.isNaN(when.getTime())) throw new ApiError(0, "bad_time", "record.occurred_at", "record.occurred_at is not a time");
  return formatTime(new Date(when.getTime() + days * 86_400_000));
}

/** @param {string} name */
export function classOf(name) {
  for (const [klass, types] of Object.entries(TYPE_CLASSES)) if (types.includes(name)) return klass;
  return null;
}

/**
 * Every state an act's fields name: `state`, `*_state` or `*_states`, at any depth (§14.3).
 * @param {unknown} act
 * @returns {Set<string>}
 */
export function namedStates(act) {
  const found = new Set();
  const stack = [act];
  while (stack.length) {
    const item = stack.pop();
    if (Array.isArray(item)) stack.push(...item);
    else if (item && typeof item === "object") {
      for (const [key, value] of Object.entries(item)) {
        if (key === "state" || key.endsWith("_state")) {
          if (typeof value === "string") found.add(value);
        } else if (key.endsWith("_states") && Array.isArray(value)) {
          for (const v of value) if (typeof v === "string") found.add(v);
        }
        if (value && typeof value === "object") stack.push(value);
      }
    }
  }
  return found;
}

/** Sort as Python sorts str: by code point (the states are ASCII, so UTF-16 order agrees). */
const sorted = (/** @type {Iterable<string>} */ items) => [...items].sort();

/**
 * The parties an act's content implies, given each ref's parties (derive_parties).
 * @param {Json} content @param {(ref: string) => Promise<string[]>} refParties
 */
export async function deriveParties(content, refParties) {
  const parties = namedStates(content);
  for (const ref of content.refs ?? []) for (const p of await refParties(ref)) parties.add(p);
  return sorted(parties);
}

/**
 * A complete clear act as (header, private body) (ledger/private.py split).
 * @param {Json} actRecord
 * @param {{retainUntil: string, refParties: (ref: string) => Promise<string[]>, salt?: string}} options
 * @returns {Promise<{header: Json, body: {act: Json, salt: string}}>}
 */
export async function splitPrivate(actRecord, { retainUntil, refParties, salt }) {
  const klass = classOf(String(actRecord.type));
  if (klass === null) throw new ApiError(0, "not_an_act", "record.type", `record.type ${actRecord.type} cannot be a private act`);
  /** @type {Json} */
  const act = {};
  for (const [k, v] of Object.entries(actRecord)) if (!HEADER_FIELDS.has(k) || k === "type") act[k] = v;
  const body = { act, salt: salt ?? toHex(globalThis.crypto.getRandomValues(new Uint8Array(SALT_BYTES))) };
  /** @type {Json} */
  const header = {};
  for (const k of COMMON_FIELDS) if (k in actRecord && k !== "parties") header[k] = actRecord[k];
  Object.assign(header, { type: HEADER_TYPE, visibility: "parties", retain_until: retainUntil });
  header.class = klass;
  header.parties = await deriveParties({ ...act, ...header }, refParties);
  header.commitment = await sha256Hex(jcs(body));
  return { header, body };
}

/**
 * What `comity submit` sends for `record` (already completed): a private act (header
 * envelope + `private` body) when `visibility` is "parties", else the clear act, marked
 * "consortium"; a chain before its need-to-know height ("legacy") takes the act as it is.
 * @param {Signer} signer @param {Json} record
 * @param {{visibility: "parties" | "consortium" | "legacy", retainUntil?: string | null,
 *   refParties: (ref: string) => Promise<string[]>, salt?: string}} options
 */
export async function submission(signer, record, { visibility, retainUntil = null, refParties, salt }) {
  const out = { ...record };
  if (visibility === "legacy") return signEnvelope(signer, out);
  if (ACT_TYPES.has(out.type) && visibility === "parties") {
    delete out.visibility;
    const { header, body } = await splitPrivate(out, { retainUntil: retainUntil || defaultRetainUntil(out), refParties, salt });
    return { ...(await signEnvelope(signer, header)), private: body };
  }
  if (ACT_TYPES.has(out.type)) out.visibility = "consortium";
  return signEnvelope(signer, out);
}

/** A ref's parties as the node shows them in its header (empty for a clear act).
 * @param {string} ref @returns {Promise<string[]>} */
export async function nodeRefParties(ref) {
  /** @type {Record<string, any>} */
  const view = await get(`/v1/records/${encodeURIComponent(ref)}`);
  const parties = view.envelope?.record?.parties;
  return Array.isArray(parties) ? parties.filter((p) => typeof p === "string") : [];
}

/** POST the submission; the record's id. @param {Json} body @returns {Promise<string>} */
export async function submit(body) {
  const reply = await post("/v1/records", body);
  if (typeof reply.id !== "string") throw new ApiError(0, "bad_reply", null, "no record id in the reply");
  return reply.id;
}

/**
 * Follow a record to its commit (the node's long poll, a few seconds at a time).
 * @param {string} id @param {{timeoutMs?: number}} [options]
 * @returns {Promise<{height: number, leaf_index: number}>}
 */
export async function waitCommitted(id, { timeoutMs = 60_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const view = await get(`/v1/records/${encodeURIComponent(id)}`, { wait: 5 });
    if (view.status === "committed") return { height: Number(view.height), leaf_index: Number(view.leaf_index) };
  }
  throw new ApiError(0, "not_committed", null, `not committed within ${timeoutMs / 1000} s`);
}
