// The Chain view (issue 21): the latest blocks, paged back, each with its mark computed in
// this browser (live.js); the validators, members, proposals and misbehaviour the node
// reports; and a search by record id, case, evidence hash or signer, each routed to its
// own call and checked for its format before anything is sent.

import { ApiError, get } from "./api.js";
import { t } from "./i18n.js";
import { caseLink, validCaseRef } from "./case.js";
import { apiGet, liveVerifier, markElement, pinControls } from "./live.js";
import { el, failure, formatTime } from "./ui.js";
import { termNode } from "./vocab.js";

export const BLOCKS_PAGE = 20;
export const SEARCH_LIMIT = 100;
const HEX64 = /^[0-9a-f]{64}$/;

const text = (/** @type {unknown} */ value) => (value === null || value === undefined || value === "" ? "—" : String(value));
const cell = (/** @type {unknown} */ value) => el("td", { textContent: text(value) });
const isObject = (/** @type {unknown} */ v) => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (/** @type {unknown} */ v) => (Array.isArray(v) ? v : []);
const short = (/** @type {unknown} */ hex) => (typeof hex === "string" ? `${hex.slice(0, 16)}…` : "—");

/**
 * The search kinds: what the query must look like, and the call it is routed to.
 * @type {Record<string, {valid: (q: string) => boolean, request: (q: string) => [string, Record<string, unknown>]}>}
 */
export const SEARCHES = {
  record: { valid: (q) => HEX64.test(q), request: (q) => [`/v1/records/${q}`, {}] },
  case: { valid: validCaseRef, request: (q) => ["/v1/search", { case_ref: q, limit: SEARCH_LIMIT }] },
  evidence: { valid: (q) => HEX64.test(q), request: (q) => ["/v1/search", { evidence_sha256: q, limit: SEARCH_LIMIT }] },
  signer: { valid: (q) => HEX64.test(q), request: (q) => ["/v1/search", { signer: q, limit: SEARCH_LIMIT }] },
};

/**
 * The call a query is sent as, or null when its format is wrong (nothing is sent then).
 * Hashes and keys are compared in lowercase, as the API writes them; a case_ref as typed.
 * @param {string} kind
 * @param {string} raw
 * @returns {[string, Record<string, unknown>] | null}
 */
export function searchRequest(kind, raw) {
  const search = Object.hasOwn(SEARCHES, kind) ? (SEARCHES[kind] ?? null) : null;
  if (search === null) return null;
  const query = kind === "case" ? String(raw ?? "").trim() : String(raw ?? "").trim().toLowerCase();
  return search.valid(query) ? search.request(query) : null;
}

/** @param {string[]} keys */
function head(keys) {
  return el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { scope: "col", textContent: t(k) }))));
}

/** @param {any} row one search result, or a record view */
function resultRow(row) {
  const tr = el("tr", {}, el("td", {}, el("code", { textContent: text(row.id) })), cell(row.height), el("td", {}, termNode("type", row.type)), cell(row.actor_state));
  const ref = row.case_ref ?? row.envelope?.record?.case_ref;
  tr.append(el("td", {}, ref === undefined || ref === null ? document.createTextNode("—") : caseLink(ref)));
  tr.dataset.id = String(row.id);
  return tr;
}

/**
 * The Chain view in `root`; returns a stop function.
 * @param {HTMLElement} root
 */
export function chainView(root) {
  root.dataset.loaded = "false";
  root.dataset.marked = "false";
  let stopped = false;
  const verifier = liveVerifier(apiGet);
  const blocks = el("tbody", { id: "blocks" });
  const older = el("button", { type: "button", id: "blocks-older", textContent: t("chain.older"), hidden: true });
  const blocksMessage = el("div", { id: "blocks-message" });
  const kind = el("select", { id: "search-kind" });
  for (const k of Object.keys(SEARCHES)) kind.append(new Option(t(`chain.search_${k}`), k));
  const query = el("input", { id: "search-query", type: "search", size: 66, maxLength: 128, autocomplete: "off", spellcheck: false });
  const results = el("tbody", { id: "search-results" });
  const searchState = el("p", { id: "search-state", role: "status" });
  const form = el(
    "form",
    { id: "search-form", role: "search" },
    el("label", {}, el("span", { textContent: t("chain.search_kind") }), kind),
    el("label", {}, el("span", { textContent: t("chain.search_query") }), query),
    el("button", { type: "submit", textContent: t("chain.search") }),
  );
  const validators = el("tbody", { id: "validators" });
  const members = el("tbody", { id: "members" });
  const proposals = el("tbody", { id: "proposals" });
  const misbehaviour = el("tbody", { id: "misbehaviour" });
  const redraw = () => chainView(root);
  root.replaceChildren(
    el("h1", { textContent: t("chain.title") }),
    el("p", { textContent: t("chain.intro") }),
    pinControls(apiGet, redraw),
    el("h2", { textContent: t("chain.search_title") }),
    form,
    searchState,
    el("table", { className: "grid", id: "search-table" }, head(["chain.id", "chain.height", "col.type", "col.actor", "col.case"]), results),
    el("h2", { textContent: t("chain.blocks") }),
    blocksMessage,
    el("table", { className: "grid" }, head(["chain.height", "col.time", "chain.proposer", "chain.records", "chain.hash", "chain.mark"]), blocks),
    older,
    el("h2", { textContent: t("chain.validators") }),
    el("table", { className: "grid" }, head(["filter.state", "chain.pubkey"]), validators),
    el("h2", { textContent: t("chain.members") }),
    el("table", { className: "grid" }, head(["filter.state", "chain.name", "chain.since", "chain.until", "chain.validating"]), members),
    el("h2", { textContent: t("chain.proposals") }),
    el("table", { className: "grid" }, head(["chain.action", "filter.state", "chain.proposer", "chain.height", "col.status", "chain.votes"]), proposals),
    el("h2", { textContent: t("chain.misbehaviour") }),
    el("table", { className: "grid" }, head(["chain.offender", "chain.kind", "chain.height", "chain.round", "chain.reporter"]), misbehaviour),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    results.replaceChildren();
    const request = searchRequest(kind.value, query.value);
    if (request === null) {
      searchState.textContent = t(`chain.bad_${kind.value}`);
      searchState.className = "fail";
      query.setAttribute("aria-invalid", "true");
      return;
    }
    query.removeAttribute("aria-invalid");
    searchState.textContent = t("chain.searching");
    searchState.className = "";
    try {
      const reply = await apiGet(...request);
      const rows = kind.value === "record" ? [reply] : list(reply.results).filter(isObject);
      for (const row of rows) results.append(resultRow(row));
      searchState.textContent = t("chain.found", { n: rows.length });
      if (kind.value === "case" && rows.length) searchState.append(" ", caseLink(String(request[1].case_ref)));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) searchState.textContent = t("chain.not_found");
      else failure(searchState, error);
    }
  });

  let next = 0; // the highest height not yet shown, paging back
  async function page() {
    if (next < 1) return;
    const from = Math.max(1, next - BLOCKS_PAGE + 1);
    try {
      const reply = await get("/v1/blocks", { from, limit: next - from + 1 });
      const got = list(reply.blocks).filter(isObject).reverse();
      const pending = [];
      for (const block of got) {
        const mark = el("td", { className: "block-mark", textContent: t("chain.checking") });
        const tr = el("tr", {}, cell(block.header?.height), cell(formatTime(block.header?.time)), cell(block.header?.proposer), cell(block.header?.record_count), el("td", {}, el("code", { textContent: short(block.hash) })), mark);
        tr.dataset.height = String(block.header?.height);
        blocks.append(tr);
        pending.push([block, mark]);
      }
      next = from - 1;
      older.hidden = next < 1;
      for (const [block, mark] of pending) {
        if (stopped) return;
        mark.replaceChildren(markElement(await verifier.mark(block)));
      }
      root.dataset.marked = "true";
    } catch (error) {
      failure(blocksMessage, error);
    }
  }
  older.addEventListener("click", () => page());

  (async () => {
    try {
      const [status, vs, ms, ps, mb] = await Promise.all([
        get("/v1/status"), get("/v1/validators"), get("/v1/members"), get("/v1/proposals"), get("/v1/misbehaviour"),
      ]);
      if (stopped) return;
      for (const v of list(vs.validators).filter(isObject)) validators.append(el("tr", {}, cell(v.state), el("td", {}, el("code", { textContent: text(v.pubkey) }))));
      for (const m of list(ms.members).filter(isObject)) {
        members.append(el("tr", {}, cell(m.state), cell(m.name), cell(m.since_height), cell(m.until_height), cell(t(m.validating ? "chain.yes" : "chain.no"))));
      }
      for (const p of list(ps.proposals).filter(isObject).reverse()) {
        const votes = list(p.votes).filter(isObject).map((v) => `${text(v.state)}: ${text(v.vote)}`).join(", ");
        proposals.append(el("tr", {}, el("td", {}, termNode("proposal", p.action)), cell(p.state), cell(p.proposer), cell(p.height), el("td", {}, termNode("outcome", p.status)), cell(votes)));
      }
      for (const m of list(mb.misbehaviour).filter(isObject)) {
        misbehaviour.append(el("tr", {}, cell(m.offender_state), el("td", {}, termNode("slot", m.kind)), cell(m.height), cell(m.round), cell(m.reporter_state)));
      }
      /** @type {[HTMLElement, number, string][]} */
      const empties = [[proposals, 6, "chain.no_proposals"], [misbehaviour, 5, "chain.no_misbehaviour"]];
      for (const [body, cols, key] of empties) {
        if (!body.childElementCount) body.append(el("tr", {}, el("td", { colSpan: cols, textContent: t(key) })));
      }
      root.dataset.loaded = "true";
      const top = /** @type {any} */ (status).height;
      next = Number.isSafeInteger(top) ? top : 0;
      await page();
    } catch (error) {
      failure(blocksMessage, error);
    }
  })();
  return () => {
    stopped = true;
  };
}
