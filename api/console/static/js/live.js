// "Verified" marks on the blocks the console shows, computed in this browser (issue 21).
//
// Theory of operation. The node is not trusted. A block it serves gets ✓ only when:
//   1. its header is well formed and of this chain, and hashes (SHA-256 over RFC 8785) to
//      the hash the node gave for it;
//   2. its validators_hash is the validator set of its height as replayed HERE from the
//      genesis and the chain's governance records (js/gov.js, the Verify page's replay);
//   3. its commit certificate commits that hash and holds valid Ed25519 precommit
//      signatures of a quorum (⌊2n/3⌋+1, every validator one vote) of distinct validators
//      of that set (js/bundle.js checkCertificate, the Verify page's check).
// The replay reads the governance records' blocks from the node and checks each as the
// Verify page checks a bundle's blocks (bundle.js verifyBlock: the set, the certificate,
// each record's signature, its RFC 6962 inclusion proof under the certified header, its
// signer's rights), in height order, before applying it. Which heights hold governance
// records the node tells (GET /v1/search?type=…); a node that hides one changes no set
// the browser derives, so the headers it certified later no longer match
// (bad_validators_hash): a lie fails closed, never as ✓.
//
// The genesis comes from GET /v1/genesis, so on its own the mark proves only that the
// blocks follow from the genesis the node serves. The reader may pin the hash the
// consortium published (kept for this tab, sessionStorage); then a node serving another
// genesis gets ✗ genesis_mismatch on every block. The mark says which genesis it is
// pinned to, or that it is not pinned. The replayed validator sets are cached per pin for
// the tab's life, so the chain view checks only the new blocks' certificates.

import { AuditFailure, checkCertificate, checkEnvelope, checkGenesis, checkHeaderShape, genesisHash, headerHash, validatorsHash, verifyBlock } from "./bundle.js";
import { Ed25519Unavailable } from "./ed25519.js";
import { GovState, REPLAYED_TYPES } from "./gov.js";
import { jcs } from "./jcs.js";
import { leafHash, ProofError, verifyInclusion } from "./merkle.js";
import { get } from "./api.js";
import { t } from "./i18n.js";
import { fromHex, isHex, sha256Hex } from "./sha256.js";
import { el } from "./ui.js";

export const PIN_KEY = "comity.genesis_pin";
/** Governance records replayed at most: past this the marks say so rather than run on. */
export const GOV_RECORDS_MAX = 20000;
const SEARCH_PAGE = 1000;
/** Failures that are not the block's: a mark with one of these is not cached. */
const RETRIED = ["block_beyond_chain", "bad_reply"];
/** Marks kept per verifier (by block hash): the chain view pages back through at most this. */
const MARKS_MAX = 5000;

/**
 * @typedef {(path: string, params?: Record<string, unknown>) => Promise<any>} GetJson
 * @typedef {{ok: boolean, code: string | null, detail: string, height: number | null,
 *   genesisHash: string | null, pinned: boolean, transient?: boolean}} Mark
 */

/**
 * The API client's get() as the marks call it: the paths they build are checked against
 * /openapi.json by tests/unit/test_console_types.py, and every reply is checked here.
 * @type {GetJson}
 */
export const apiGet = /** @type {GetJson} */ (/** @type {unknown} */ (get));

const isObject = (/** @type {unknown} */ v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** The genesis hash pinned for this tab, or null. */
export function getPin() {
  const pin = sessionStorage.getItem(PIN_KEY);
  return pin && isHex(pin, 32) ? pin : null;
}

/**
 * Pin a published genesis hash for this tab; false (and nothing kept) unless 64 hex digits.
 * @param {string} text
 */
export function setPin(text) {
  const clean = String(text ?? "").trim().toLowerCase();
  if (!isHex(clean, 32)) return false;
  sessionStorage.setItem(PIN_KEY, clean);
  return true;
}

export function forgetPin() {
  sessionStorage.removeItem(PIN_KEY);
}

export class LiveVerifier {
  /**
   * @param {GetJson} getJson the API client's GET (api.js get), or a test's
   * @param {string | null} pinnedHash the genesis hash the reader pinned, or null
   */
  constructor(getJson, pinnedHash = null) {
    this.get = getJson;
    this.pinnedHash = pinnedHash;
    /** @type {AuditFailure | null} a failure that makes every mark ✗ (genesis, replay) */
    this.failure = null;
    /** @type {string | null} */
    this.genesisHash = null;
    /** @type {string | null} */
    this.chainId = null;
    /** @type {GovState | null} */
    this.gov = null;
    this.covered = 0; // heights up to which the governance records are known and replayed
    this.replayed = 0; // the last governance block applied
    /** @type {Set<string>} governance record ids seen (a last page is read again on refresh) */
    this.seen = new Set();
    /** @type {Map<string, string | null>} search cursor per governance type */
    this.cursors = new Map(REPLAYED_TYPES.map((t) => [t, null]));
    /** @type {Set<number>} */
    this.pending = new Set();
    /** @type {Map<string, Mark>} */
    this.marks = new Map();
    /** @type {Promise<void> | null} */
    this.started = null;
    /** @type {Promise<void>} replays run one at a time */
    this.queue = Promise.resolve();
  }

  /** Fetch and check the served genesis; its hash against the pin. */
  async start() {
    this.started ??= (async () => {
      const genesis = await this.get("/v1/genesis");
      try {
        checkGenesis(genesis);
        this.genesisHash = await genesisHash(genesis);
        this.chainId = genesis.chain_id;
        this.gov = new GovState(genesis);
      } catch (error) {
        if (!(error instanceof AuditFailure)) throw error;
        this.failure = error;
        return;
      }
      if (this.pinnedHash !== null && this.pinnedHash !== this.genesisHash) {
        this.failure = new AuditFailure(
          "genesis_mismatch", `the node serves genesis ${this.genesisHash}, not the pinned ${this.pinnedHash}`,
        );
      }
    })();
    try {
      await this.started;
    } catch (error) {
      this.started = null; // a network failure: try again on the next mark
      throw error;
    }
  }

  /**
   * Replay the governance records up to at least `height` (one replay at a time).
   * @param {number} height
   */
  async cover(height) {
    const run = this.queue.then(async () => {
      while (this.covered < height && this.failure === null) {
        const before = this.covered;
        await this.refresh();
        if (this.failure !== null) return;
        if (this.covered === before) {
          throw new AuditFailure("block_beyond_chain", `block ${height} is above the node's height ${this.covered}`, height);
        }
      }
    });
    this.queue = run.catch(() => {});
    await run;
  }

  /** Learn the governance records committed since the last refresh, and replay them. */
  async refresh() {
    const status = await this.get("/v1/status");
    const top = status?.height;
    if (!Number.isSafeInteger(top) || top < 0) throw new AuditFailure("bad_reply", "/v1/status has no height");
    for (const type of REPLAYED_TYPES) {
      for (;;) {
        const page = await this.get("/v1/search", { type, cursor: this.cursors.get(type), limit: SEARCH_PAGE });
        const rows = Array.isArray(page?.results) ? page.results : [];
        for (const row of rows) {
          if (!Number.isSafeInteger(row?.height) || row.height < 1) throw new AuditFailure("bad_reply", "a search result has no height");
          if (row.height > this.replayed) this.pending.add(row.height);
          this.seen.add(String(row.id));
        }
        if (this.seen.size > GOV_RECORDS_MAX) {
          throw new AuditFailure("too_many_governance_records", `over ${GOV_RECORDS_MAX} governance records: use comity verify`);
        }
        const next = typeof page?.next_cursor === "string" ? page.next_cursor : null;
        if (next === null || !rows.length) break;
        this.cursors.set(type, next);
      }
    }
    for (const height of [...this.pending].sort((a, b) => a - b)) {
      if (height > top) break;
      await this.replayBlock(height);
      if (this.failure !== null) return; // the set chain is broken: replay no further
      this.pending.delete(height);
    }
    this.covered = Math.max(this.covered, top);
  }

  /**
   * Check the governance block `height` as the Verify page checks a bundle's block, then
   * apply its governance records. A failure here is permanent: no mark can be trusted.
   * @param {number} height
   */
  async replayBlock(height) {
    const block = await this.get(`/v1/blocks/${height}`, { envelopes: "true" });
    const header = block?.header;
    const entries = [];
    for (const envelope of Array.isArray(block?.envelopes) ? block.envelopes : []) {
      if (!isObject(envelope) || !isObject(envelope.record) || !REPLAYED_TYPES.includes(envelope.record.type)) continue;
      let id;
      try {
        id = await sha256Hex(jcs(envelope.record));
      } catch {
        this.failure = new AuditFailure("bad_envelope", "a governance record is not canonical JSON", height);
        return;
      }
      const proof = await this.get(`/v1/records/${id}/proof`, { tree_size: header?.ledger_size });
      entries.push({ envelope, leaf_index: proof?.leaf_index, audit_path: proof?.audit_path });
    }
    try {
      const gov = /** @type {GovState} */ (this.gov);
      const { checked } = await verifyBlock({ header, commit: block?.commit, entries }, gov, /** @type {string} */ (this.chainId), this.replayed, () => {});
      gov.applyBlock(height, checked.map(([item]) => [item.id, item.record]));
      this.replayed = height;
    } catch (error) {
      if (!(error instanceof AuditFailure)) throw error;
      this.failure = new AuditFailure(error.code, `the validator-set chain: ${error.detail}`, error.height);
    }
  }

  /**
   * The mark of one block as GET /v1/blocks serves it ({hash, header, commit, …}).
   * @param {any} block
   * @returns {Promise<Mark>}
   */
  async mark(block) {
    // Keyed by everything the mark depends on: a lying copy of a block never answers
    // for the true one.
    let key;
    try {
      key = JSON.stringify([block?.hash, block?.header, block?.commit]);
    } catch {
      return this.check(block);
    }
    const known = this.marks.get(key);
    if (known) return known;
    const mark = await this.check(block);
    if (!mark.transient && this.marks.size < MARKS_MAX) this.marks.set(key, mark);
    return mark;
  }

  /** @param {any} block @returns {Promise<Mark>} */
  async check(block) {
    const height = Number.isSafeInteger(block?.header?.height) ? block.header.height : null;
    const result = (/** @type {boolean} */ ok, /** @type {string | null} */ code, /** @type {string} */ detail, transient = false) => ({
      ok, code, detail, height, genesisHash: this.genesisHash, pinned: this.pinnedHash !== null, transient,
    });
    try {
      await this.start();
      if (this.failure) throw this.failure;
      if (!isObject(block)) throw new AuditFailure("bad_header", "the block is not an object");
      checkHeaderShape(block.header, height);
      const header = block.header;
      if (header.chain_id !== this.chainId) throw new AuditFailure("wrong_chain", `header.chain_id is ${header.chain_id}`, height);
      const hash = await headerHash(header);
      if (block.hash !== hash) {
        throw new AuditFailure("bad_header_hash", `the header hashes to ${hash}, the node calls it ${String(block.hash).slice(0, 64)}`, height);
      }
      await this.cover(header.height);
      if (this.failure) throw this.failure;
      const seats = /** @type {GovState} */ (this.gov).validators(header.height);
      if (header.validators_hash !== (await validatorsHash(seats))) {
        throw new AuditFailure(
          "bad_validators_hash", `validators_hash is not the set ${seats.map((/** @type {{state: string}} */ s) => s.state).join(", ")} replayed from the genesis`, height,
        );
      }
      const signed = await checkCertificate(block.commit, /** @type {string} */ (this.chainId), seats, hash, header.height);
      return result(true, null, `${signed.length}/${seats.length}: ${signed.join(", ")}`);
    } catch (error) {
      // A block above the node's height, or a status without one, may be a race between
      // two replies: said, but not kept, so the next view asks again.
      if (error instanceof AuditFailure) return result(false, error.code, error.detail, RETRIED.includes(error.code));
      if (error instanceof Ed25519Unavailable) return result(false, "ed25519_unavailable", error.message);
      return result(false, "unavailable", String(/** @type {any} */ (error)?.code ?? /** @type {any} */ (error)?.message ?? error), true);
    }
  }

  /**
   * The mark of one record in its block: the block's mark, and then the record as the
   * node serves it (GET /v1/records/{id}) hashes to its id, its Ed25519 signature
   * verifies, and its RFC 6962 inclusion proof leads to the certified header's root at a
   * leaf of that block. (Signing rights are the Verify page's: they need the replay as of
   * that height, which a bundle gives.)
   * @param {string} recordId
   * @param {any} block the block the node says committed it (GET /v1/blocks/{height})
   * @returns {Promise<Mark>}
   */
  async markRecord(recordId, block) {
    const blockMark = await this.mark(block);
    if (!blockMark.ok) return blockMark;
    const header = block.header;
    const height = header.height;
    const result = (/** @type {boolean} */ ok, /** @type {string | null} */ code, /** @type {string} */ detail, transient = false) => ({
      ...blockMark, ok, code, detail, transient,
    });
    try {
      if (!isHex(recordId, 32)) throw new AuditFailure("bad_envelope", "the record id is not 64 lowercase hex", height);
      const view = await this.get(`/v1/records/${recordId}`);
      if (view?.status !== "committed" || view?.height !== height) {
        throw new AuditFailure("record_not_in_block", `the node places record ${recordId} at height ${view?.height}, not ${height}`, height);
      }
      const item = await checkEnvelope(view.envelope, /** @type {string} */ (this.chainId), height);
      if (item.id !== recordId) throw new AuditFailure("bad_envelope", `the envelope served is of record ${item.id}`, height);
      const proof = await this.get(`/v1/records/${recordId}/proof`, { tree_size: header.ledger_size });
      const index = proof?.leaf_index;
      const path = Array.isArray(proof?.audit_path) && proof.audit_path.every((/** @type {string} */ h) => isHex(h, 32)) ? proof.audit_path : null;
      const first = header.ledger_size - header.record_count;
      if (!Number.isSafeInteger(index) || path === null || index < first || index >= header.ledger_size) {
        throw new AuditFailure("bad_inclusion_proof", `the proof's leaf ${index} is not a leaf of block ${height} (${first}..${header.ledger_size - 1})`, height);
      }
      try {
        await verifyInclusion(await leafHash(item.leaf), index, header.ledger_size, path.map(fromHex), fromHex(header.ledger_root));
      } catch (error) {
        if (!(error instanceof ProofError)) throw error;
        throw new AuditFailure("bad_inclusion_proof", `record ${recordId} at leaf ${index}: ${error.message}`, height);
      }
      return result(true, null, `${blockMark.detail}; ${item.record.type} signed and included at leaf ${index}`);
    } catch (error) {
      if (error instanceof AuditFailure) return result(false, error.code, error.detail);
      if (error instanceof Ed25519Unavailable) return result(false, "ed25519_unavailable", error.message);
      return result(false, "unavailable", String(/** @type {any} */ (error)?.code ?? /** @type {any} */ (error)?.message ?? error), true);
    }
  }
}

/** @type {Map<string, LiveVerifier>} one verifier (and its replayed sets) per pin, per tab */
const verifiers = new Map();

/**
 * The tab's verifier for the current pin, its cache kept across views.
 * @param {GetJson} getJson
 */
export function liveVerifier(getJson) {
  const pin = getPin();
  const key = pin ?? "";
  if (!verifiers.has(key)) verifiers.set(key, new LiveVerifier(getJson, pin));
  return /** @type {LiveVerifier} */ (verifiers.get(key));
}

// --- the DOM side: the mark, and the pin -------------------------------------------------

/**
 * The sentence for a reason code (the Verify page's reasons, and the node being unreachable).
 * @param {string} code
 */
export function reasonText(code) {
  if (code === "unavailable") return t("live.unavailable");
  const shared = t(`reason.${code}`);
  return shared !== `reason.${code}` ? shared : "";
}

/**
 * The mark as shown: ✓ or ✗ in words, the genesis it is pinned to, the reason of a ✗.
 * @param {Mark} mark
 */
export function markElement(mark) {
  // Hashes are isolated left to right (U+2066 … U+2069), so they read alike in Arabic.
  const genesis = mark.genesisHash ? `\u2066${mark.genesisHash.slice(0, 8)}…\u2069` : "—";
  const span = el("span", { className: `vmark ${mark.ok ? "ok" : "bad"}` });
  span.dataset.verified = String(mark.ok);
  if (mark.code) span.dataset.code = mark.code;
  const head = el("strong", { textContent: mark.ok ? `✓ ${t("live.verified")}` : `✗ ${t("live.not_verified")}` });
  const where = el("span", { className: "detail", textContent: t(mark.pinned ? "live.pinned_to" : "live.served", { genesis }) });
  if (mark.ok) {
    span.title = t("live.signed_by", { who: mark.detail });
    span.append(head, " ", where);
  } else {
    span.title = mark.detail;
    span.append(head, " ", el("code", { textContent: String(mark.code) }), " ", el("span", { className: "detail", textContent: reasonText(String(mark.code)) }), " ", where);
  }
  return span;
}

/**
 * The pin form: a published genesis hash kept for the tab; `onChange` redraws the view.
 * @param {GetJson} getJson
 * @param {() => void} onChange
 */
export function pinControls(getJson, onChange) {
  const input = el("input", { id: "pin-hash", type: "text", size: 66, maxLength: 64, autocomplete: "off", spellcheck: false, inputMode: "latin" });
  const state = el("p", { id: "pin-state", role: "status", className: "detail" });
  const use = el("button", { type: "submit", id: "pin-use", textContent: t("live.pin") });
  const drop = el("button", { type: "button", id: "pin-forget", textContent: t("live.unpin"), hidden: getPin() === null });
  const form = el("form", { id: "pin-form", className: "pin" }, el("label", {}, el("span", { textContent: t("live.pin_label") }), input), use, drop, state);
  const show = async () => {
    const verifier = liveVerifier(getJson);
    const pin = getPin();
    try {
      await verifier.start();
    } catch {
      // the marks say the node is unavailable
    }
    const served = `\u2066${verifier.genesisHash ?? "—"}\u2069`;
    const pinned = `\u2066${pin}\u2069`;
    state.textContent = pin === null ? t("live.not_pinned", { served }) : verifier.failure?.code === "genesis_mismatch" ? t("live.pin_mismatch", { pin: pinned, served }) : t("live.pinned", { pin: pinned });
    state.className = pin === null ? "warn" : verifier.failure?.code === "genesis_mismatch" ? "fail" : "pass";
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!setPin(input.value)) {
      state.textContent = t("live.bad_pin");
      state.className = "fail";
      input.setAttribute("aria-invalid", "true");
      return;
    }
    input.value = "";
    input.removeAttribute("aria-invalid");
    onChange();
  });
  drop.addEventListener("click", () => {
    forgetPin();
    onChange();
  });
  show();
  return form;
}
