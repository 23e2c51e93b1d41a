// Governance replay for the browser's verifier: who validates and who may sign, per height.
// A line-by-line counterpart of ledger/audit/gov.py (read its theory of operation): the
// validator set of height H and the signing rights in block H follow from the genesis and
// the governance records of blocks 1..H-1. The tables are copies, as data; the pytest
// tests/unit/test_console_js.py checks them equal to the Python auditor's.

/**
 * A record as the chain holds it. What the checks before the replay establish (checkEnvelope
 * in bundle.js: an object with an `actor` object and a string `type`) is typed; every other
 * field comes from a hostile file and is `any`, read only behind the runtime checks below.
 * @typedef {{type: string, actor: Record<string, any>, [field: string]: any}} ChainRecord
 */
/** A genesis document checkGenesis accepted (bundle.js); its members and enrolments are read as parsed. @typedef {Record<string, any>} Genesis */
/** @typedef {{state: string, pubkey: string}} Seat */
/** @typedef {{state: string, roles: string[], notAfter: string | null, revokedAt: number | null}} Grant */
/**
 * @typedef {{id: string, action: string, subject: string, height: number, record: ChainRecord,
 *   votes: Map<string, unknown>, status: string}} Proposal
 */
/** @typedef {{height: number, decidedAt: number, action: string, state: string, recordIds: string[]}} Change */
/** @typedef {(height: number, recordId: string, record: ChainRecord) => void} Handler */

/** @type {Record<string, string[]>} */
export const ROLE_TYPES = {
  investigator: [
    "art32_access", "custody_event", "direct_provider_request", "eio", "emergency_disclosure",
    "epoc", "epoc_pr", "exchange_receipt", "joint_investigation", "online_extraction",
    "preservation_request", "production_order", "realtime_collection", "remote_inspection",
    "search_seizure", "spontaneous_information", "technical_measure", "video_conference",
  ],
  authority: [
    "addressee_report", "conditions_acknowledgement", "custody_event", "direct_provider_request",
    "eio", "eio_response", "epoc_enforcing_decision", "emergency_disclosure", "epoc", "epoc_pr",
    "exchange_receipt", "jit_accession", "jit_agreement", "joint_investigation", "mla_request",
    "mla_response", "preservation_request", "preservation_response", "production_order",
    "provider_request_answer", "sovereignty_response", "spontaneous_information",
    "technical_measure", "traffic_path_disclosure",
  ],
  integration: ["exchange_receipt"],
  auditor: [],
  admin: [
    "directory_entry", "enroll_key", "member_proposal", "member_vote", "misbehaviour",
    "revoke_key",
  ],
  node: ["body_purge", "body_violation", "misbehaviour"],
};

/** @type {Record<string, string[]>} */
export const TYPE_CLASSES = {
  request: [
    "mla_request", "preservation_request", "production_order", "eio", "epoc", "epoc_pr",
    "emergency_disclosure", "direct_provider_request",
  ],
  answer: [
    "mla_response", "sovereignty_response", "conditions_acknowledgement",
    "preservation_response", "traffic_path_disclosure", "provider_request_answer",
    "epoc_enforcing_decision", "addressee_report", "eio_response",
  ],
  measure: [
    "online_extraction", "remote_inspection", "technical_measure", "search_seizure",
    "realtime_collection", "art32_access", "video_conference",
  ],
  custody: ["custody_event"],
  cooperation: [
    "spontaneous_information", "joint_investigation", "jit_agreement", "jit_accession",
  ],
  receipt: ["exchange_receipt"],
};

export const REPLAYED_TYPES = ["enroll_key", "revoke_key", "member_proposal", "member_vote"];
export const CHANGE_DELAY_BLOCKS = 2;
const SET_ACTIONS = ["add", "remove", "rotate_key"];
const SELF_ACTIONS = ["rotate_key", "rotate_enc_key"];
/** Observer nodes: voted like membership; they change who may read, not who signs. */
const OBSERVER_ACTIONS = ["add_observer", "remove_observer"];
const PARAMS = ["need_to_know_from_height", "catalogue_v2_from_height", "catalogue_v3_from_height"];

/** A failed check: `code` is the Python auditor's reason, `height` where (or null). */
export class AuditFailure extends Error {
  /** @param {string} code @param {string} detail @param {number | null} height */
  constructor(code, detail, height = null) {
    super(`${height !== null ? `height ${height}: ` : ""}${code}: ${detail}`);
    this.code = code;
    this.detail = detail;
    this.height = height;
  }
}

/**
 * ISO 8601 UTC time as microseconds since the epoch (BigInt), exactly, like parse_utc.
 * @param {unknown} text @returns {bigint}
 */
export function parseUtc(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/.exec(
    String(text),
  );
  if (!m) throw new TypeError(`${text} is not an ISO 8601 time`);
  const [, year, month, day, hour, minute, second, fraction = "", zone = "Z"] = m;
  const seconds = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second)) / 1000;
  let offset = 0;
  if (zone !== "Z") {
    offset = (zone[0] === "-" ? -1 : 1) * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60);
  }
  const micros = BigInt(fraction.padEnd(6, "0"));
  return BigInt(seconds - offset) * 1000000n + micros;
}

/** @param {number} yes @param {number} no @param {number} n @returns {"passed" | "rejected" | "open"} */
export function voteOutcome(yes, no, n) {
  const quorum = Math.floor((2 * n) / 3) + 1;
  if (yes >= quorum) return "passed";
  if (n - no < quorum) return "rejected";
  return "open";
}

/**
 * Python's record["name"]: a missing field is a malformed governance record.
 * @param {ChainRecord} record @param {...string} names
 */
function need(record, ...names) {
  for (const name of names) {
    if (!Object.hasOwn(record, name)) throw new TypeError(`${record.type} has no ${name}`);
  }
}

/** @param {Seat} a @param {Seat} b */
const bySeat = (a, b) =>
  a.state < b.state ? -1 : a.state > b.state ? 1 : a.pubkey < b.pubkey ? -1 : a.pubkey > b.pubkey ? 1 : 0;

export class GovState {
  /** @param {Genesis} genesis */
  constructor(genesis) {
    /** @type {string} */
    this.chainId = genesis.chain_id;
    /** @type {number} */
    this.expiryBlocks = genesis.consensus.proposal_expiry_blocks;
    /** @type {Map<string, Grant>} */
    this.keys = new Map();
    /** @type {Map<string, Proposal>} */
    this.proposals = new Map();
    /** @type {Change[]} */
    this.changes = [];
    for (const member of genesis.members) {
      for (const admin of member.admin_pubkeys) {
        this.keys.set(admin, { state: member.state, roles: ["admin"], notAfter: null, revokedAt: null });
      }
    }
    for (const grant of genesis.enrollments) {
      this.keys.set(grant.pubkey, {
        state: grant.state, roles: [...grant.roles], notAfter: null, revokedAt: null,
      });
    }
    /** @type {Seat[]} */
    const first = genesis.members.map((/** @type {any} */ m) => ({ state: m.state, pubkey: m.node_pubkey })).sort(bySeat);
    for (const seat of first) {
      if (typeof seat.state !== "string" || typeof seat.pubkey !== "string") {
        throw new TypeError("a member has no state or node_pubkey");
      }
    }
    /** @type {Map<number, Seat[]>} validator sets by the height they start at */
    this.sets = new Map([[1, first]]);
    this.nodeKeys = new Set(first.map((s) => s.pubkey));
    /** @type {Set<string>} observer node keys ever admitted (used for ever) */
    this.observerKeys = new Set();
    /** @type {Map<string, string>} the admitted observers' node keys and states */
    this.observers = new Map();
    /** @type {Map<string, number>} parameters by name (a Map: a name is the chain's, never a prototype's) */
    this.params = new Map();
    for (const name of PARAMS) {
      const value = genesis.consensus[name];
      if (value !== undefined && value !== null) this.params.set(name, value);
    }
  }

  /** @param {number} height @returns {Seat[]} */
  validators(height) {
    const at = Math.max(...[...this.sets.keys()].filter((h) => h <= Math.max(height, 1)));
    const seats = this.sets.get(at);
    if (seats === undefined) throw new Error(`no validator set at ${height}: the set of height 1 is always there`);
    return seats;
  }

  /**
   * null if `signer` may sign `record` in block `height`, else [code, detail].
   * @param {number} height @param {bigint} blockTime @param {string} signer @param {ChainRecord} record
   * @returns {[string, string] | null}
   */
  authorise(height, blockTime, signer, record) {
    const seats = this.validators(height);
    let grant = this.keys.get(signer);
    if (grant === undefined) {
      const seat = seats.find((s) => s.pubkey === signer);
      if (seat) grant = { state: seat.state, roles: ["node"], notAfter: null, revokedAt: null };
    }
    if (grant === undefined) {
      return ["signer_not_enrolled", `signer ${signer.slice(0, 16)}… is not an enrolled key`];
    }
    if (grant.revokedAt !== null) {
      return ["signer_revoked", `signer was revoked at height ${grant.revokedAt}`];
    }
    if (grant.notAfter !== null && blockTime > parseUtc(grant.notAfter)) {
      return ["signer_expired", `signer's enrolment ended at ${grant.notAfter}`];
    }
    const actor = record.actor.state;
    if (actor !== grant.state) {
      return ["wrong_state", `actor.state ${actor} but the signer is enrolled for ${grant.state}`];
    }
    const state = grant.state;
    if (!seats.some((s) => s.state === state)) {
      return ["state_not_member", `${grant.state} is not a member at height ${height}`];
    }
    const allowed = new Set(grant.roles.flatMap((r) => (Object.hasOwn(ROLE_TYPES, r) ? ROLE_TYPES[r] : [])));
    const roles = JSON.stringify([...grant.roles].sort());
    if (record.type === "private_act") {
      const types = Object.hasOwn(TYPE_CLASSES, String(record.class)) ? (TYPE_CLASSES[String(record.class)] ?? []) : [];
      if (types.some((t) => allowed.has(t))) return null;
      return ["role_not_allowed", `roles ${roles} may not sign acts of class ${record.class}`];
    }
    if (!allowed.has(record.type)) {
      return ["role_not_allowed", `roles ${roles} may not sign ${record.type}`];
    }
    return null;
  }

  /** @param {string} pubkey */
  keyInUse(pubkey) {
    return this.keys.has(pubkey) || this.nodeKeys.has(pubkey) || this.observerKeys.has(pubkey);
  }

  /**
   * Apply the governance records [id, record] of block `height`, in block order.
   * @param {number} height @param {readonly [string, ChainRecord][]} records
   */
  applyBlock(height, records) {
    /** @type {Record<string, Handler>} */
    const handlers = {
      enroll_key: this.enroll, revoke_key: this.revoke,
      member_proposal: this.propose, member_vote: this.vote,
    };
    for (const [recordId, record] of records) {
      const handler = Object.hasOwn(handlers, record.type) ? handlers[record.type] : undefined;
      if (handler === undefined) continue;
      try {
        handler.call(this, height, recordId, record);
      } catch (error) {
        if (error instanceof AuditFailure) throw error;
        throw new AuditFailure(
          "bad_governance_record", `record ${recordId} is malformed (${error instanceof Error ? error.message : String(error)})`, height,
        );
      }
    }
  }

  /** @type {Handler} */
  enroll(_height, _recordId, record) {
    if (typeof record.pubkey !== "string" || !Array.isArray(record.roles)) {
      throw new TypeError("enroll_key needs pubkey and roles");
    }
    this.keys.set(record.pubkey, {
      state: record.actor.state, roles: [...record.roles],
      notAfter: record.not_after ?? null, revokedAt: null,
    });
  }

  /** @type {Handler} */
  revoke(height, recordId, record) {
    need(record, "pubkey");
    const grant = this.keys.get(record.pubkey);
    if (grant === undefined || grant.state !== record.actor.state) {
      throw new AuditFailure(
        "bad_revocation", `record ${recordId} revokes a key that is not enrolled for its state`, height,
      );
    }
    grant.revokedAt = height;
  }

  /** @type {Handler} */
  propose(height, recordId, record) {
    need(record, "action", record.action === "set_param" ? "name" : "state");
    const action = record.action;
    const subject = action === "set_param" ? `param:${record.name}` : record.state;
    for (const other of this.proposals.values()) {
      if (other.subject === subject && this.status(other, height) === "open") {
        throw new AuditFailure(
          "proposal_open", `record ${recordId} proposes about ${subject} while ${other.id} is open`, height,
        );
      }
    }
    if (SELF_ACTIONS.includes(action) && subject !== record.actor.state) {
      throw new AuditFailure(
        "wrong_state", `record ${recordId}: ${record.actor.state} re-keys ${subject}'s node`, height,
      );
    }
    /** @type {Proposal} */
    const proposal = { id: recordId, action, subject, height, record, votes: new Map(), status: "open" };
    this.proposals.set(recordId, proposal);
    if (SELF_ACTIONS.includes(action)) this.decide(height, proposal, [recordId]);
  }

  /** @type {Handler} */
  vote(height, recordId, record) {
    need(record, "proposal", "vote");
    const proposal = this.proposals.get(record.proposal);
    const voter = record.actor.state;
    if (proposal === undefined) {
      throw new AuditFailure(
        "unknown_proposal", `vote ${recordId} is for ${record.proposal}, not a committed proposal`, height,
      );
    }
    const status = this.status(proposal, height);
    if (status !== "open" || proposal.votes.has(voter)) {
      const why = status === "open" ? "already voted" : `proposal is ${status}`;
      throw new AuditFailure("bad_vote", `vote ${recordId} by ${voter}: ${why}`, height);
    }
    proposal.votes.set(voter, record.vote);
    const members = new Set(this.validators(height).map((s) => s.state));
    let yes = 0;
    let no = 0;
    for (const [state, v] of proposal.votes) {
      if (members.has(state) && v === "yes") yes += 1;
      if (members.has(state) && v === "no") no += 1;
    }
    const outcome = voteOutcome(yes, no, members.size);
    if (outcome === "passed") this.decide(height, proposal, [proposal.id, recordId]);
    else if (outcome === "rejected") proposal.status = "rejected";
  }

  /** @param {Proposal} proposal @param {number} height */
  status(proposal, height) {
    if (proposal.status === "open" && height > proposal.height + this.expiryBlocks) return "expired";
    return proposal.status;
  }

  /** @param {number} height @param {Proposal} proposal @param {string[]} recordIds */
  decide(height, proposal, recordIds) {
    if (OBSERVER_ACTIONS.includes(proposal.action)) { // no set or signing right changes, but a
      // node key an observer holds is used for ever: no member may take it after
      proposal.status = this.observer(proposal.record) ? "passed" : "rejected";
      return;
    }
    if (!SET_ACTIONS.includes(proposal.action)) {
      proposal.status = this.setParam(height, proposal.record) ? "passed" : "rejected";
      return;
    }
    const latest = this.validators(Math.max(...this.sets.keys()));
    const newSet = this.newSet(proposal, latest);
    if (newSet === null) {
      proposal.status = "rejected";
      return;
    }
    proposal.status = "passed";
    this.sets.set(height + CHANGE_DELAY_BLOCKS, [...newSet].sort(bySeat));
    for (const seat of newSet) this.nodeKeys.add(seat.pubkey);
    this.changes.push({
      height: height + CHANGE_DELAY_BLOCKS, decidedAt: height, action: proposal.action,
      state: proposal.subject, recordIds,
    });
  }

  /**
   * A decided observer proposal: add_observer applies if its key is unused (it is then used
   * for ever); remove_observer of an admitted one applies.
   * @param {ChainRecord} record @returns {boolean}
   */
  observer(record) {
    need(record, "node_pubkey");
    const key = record.node_pubkey;
    if (record.action === "add_observer") {
      if (this.keyInUse(key)) return false;
      this.observers.set(key, record.state);
      this.observerKeys.add(key);
      return true;
    }
    if (this.observers.get(key) !== record.state) return false;
    this.observers.delete(key);
    return true;
  }

  /** @param {number} height @param {ChainRecord} record @returns {boolean} */
  setParam(height, record) {
    if (record.action !== "set_param") return true;
    need(record, "value");
    const bound = height + CHANGE_DELAY_BLOCKS;
    const current = this.params.get(record.name);
    if (!Number.isSafeInteger(record.value)) throw new TypeError("set_param needs an integer value");
    if ((current !== undefined && current <= bound) || record.value <= bound) return false;
    this.params.set(record.name, record.value);
    return true;
  }

  /** @param {Proposal} proposal @param {Seat[]} latest @returns {Seat[] | null} */
  newSet(proposal, latest) {
    const { record, subject } = proposal;
    const states = new Set(latest.map((s) => s.state));
    if (proposal.action === "add") {
      need(record, "node_pubkey", "admin_pubkeys");
      if (!Array.isArray(record.admin_pubkeys)) throw new TypeError("add needs admin_pubkeys");
      const keys = [record.node_pubkey, ...record.admin_pubkeys];
      if (states.has(subject) || keys.some((k) => this.keyInUse(k))) return null;
      for (const admin of record.admin_pubkeys) {
        this.keys.set(admin, { state: subject, roles: ["admin"], notAfter: null, revokedAt: null });
      }
      return [...latest, { state: subject, pubkey: record.node_pubkey }];
    }
    if (proposal.action === "remove") {
      const remaining = latest.filter((s) => s.state !== subject);
      return remaining.length && remaining.length < latest.length ? remaining : null;
    }
    need(record, "node_pubkey"); // rotate_key
    const key = record.node_pubkey;
    if (!states.has(subject) || this.keyInUse(key)) return null;
    return latest.map((s) => (s.state === subject ? { state: s.state, pubkey: key } : s));
  }
}
