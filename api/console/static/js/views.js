// The territorial state's inbox and the desk (issue 21). Every string from the chain is set
// with textContent (never innerHTML), and every call goes through api.js with the tab's token.

import { caseLink } from "./case.js";
import { ApiError, get, stream } from "./api.js";
import { t } from "./i18n.js";
import { answerButton } from "./answer.js";
import { term, termNode, termOption } from "./vocab.js";

const PAGE = 50; // notices or requests per page
const DESK_ACTS_MAX = 100; // acts opened for their lifecycle on one desk load
export const DEADLINE_STATUSES = ["running", "warning", "overdue", "stopped"];

// el, text, formatTime and failure are ui.js's (typed, shared with the Case and Chain views).
import { el, failure, formatTime, text } from "./ui.js";
export { failure, formatTime };

/**
 * A JSON object of a reply the OpenAPI document leaves open (`{[key: string]: unknown}`:
 * the act view, notices, deadlines, stats), or {} for anything else. Its members are read
 * only into text (textContent, through text() and formatTime()), never as markup.
 * @param {unknown} value @returns {Record<string, any>}
 */
const object = (value) => (typeof value === "object" && value !== null && !Array.isArray(value) ? value : {});
/** The members of a JSON array that are objects; [] for anything else. @param {unknown} value */
const objects = (value) => (Array.isArray(value) ? value.filter((v) => typeof v === "object" && v !== null && !Array.isArray(v)) : []).map(object);

/** @param {unknown} value */
function cell(value) {
  return el("td", { textContent: text(value) });
}

/** @param {string[]} keys */
function headRow(keys) {
  return el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { scope: "col", textContent: t(k) }))));
}

/** @param {Record<string, any>} act */
function sovereigntyText(act) {
  return Object.entries(object(act.sovereignty))
    .map(([s, answer]) => `${s}: ${term("answer", answer)}`)
    .join(", ");
}

// --- the act, opened ---------------------------------------------------------------------

/** @param {string} id @param {HTMLElement} target @param {string | null} [state] */
export async function openAct(id, target, state = null) {
  target.replaceChildren(el("p", { textContent: t("act.loading") }));
  /** @type {Record<string, any>} */
  let act;
  try {
    act = object(await get(`/v1/acts/${encodeURIComponent(id)}`));
  } catch (error) {
    failure(target, error);
    return;
  }
  const record = object(object(act.envelope).record);
  const list = el("dl", { className: "facts" });
  /** @param {string} key @param {unknown} value */
  const fact = (key, value) => list.append(el("dt", { textContent: t(key) }), el("dd", { textContent: text(value) }));
  fact("act.id", act.id ?? id);
  fact("col.type", term("type", record.type));
  fact("col.actor", record.actor?.state);
  fact("col.case", record.case_ref);
  fact("col.instrument", term("instrument", record.legal_basis?.instrument));
  fact("col.time", formatTime(record.occurred_at));
  fact("act.phase", act.lifecycle ? term("phase", act.lifecycle.phase) : null);
  fact("act.sovereignty", sovereigntyText(act));
  const answers = el("ol", { className: "answers" });
  for (const answer of objects(act.answers)) {
    const a = answer.envelope?.record ?? answer.record ?? answer;
    const what = [term("type", a.type ?? answer.type), a.actor?.state ?? answer.actor_state, a.response ? term("answer", a.response) : term("status", answer.status ?? answer.answer)]
      .filter(Boolean)
      .join(" · ");
    answers.append(el("li", { textContent: `${what} — ${formatTime(a.occurred_at ?? answer.occurred_at)}` }));
  }
  if (!answers.childElementCount) answers.append(el("li", { textContent: t("act.no_answers") }));
  target.replaceChildren(el("h2", { id: "act-title", textContent: t("act.title") }), list, el("h3", { textContent: t("act.answers") }), answers);
  const answer = answerButton(act, state); // the territorial state answers it here (answer.js)
  if (answer) target.append(answer);
}

// --- the inbox ---------------------------------------------------------------------------

/** @param {HTMLElement} root @param {string} state @returns {() => void} */
export function inbox(root, state) {
  /** @type {{status: "" | "pending" | "answered", cursor: string | null, stop: (() => void) | null}} */
  const view = { status: "", cursor: null, stop: null };
  const table = el("tbody", { id: "notices" });
  const more = el("button", { type: "button", id: "notices-more", textContent: t("inbox.more") });
  const filter = el("select", { id: "inbox-status" });
  for (const [value, key] of /** @type {[string, string][]} */ ([["", "inbox.all"], ["pending", "inbox.pending"], ["answered", "inbox.answered"]])) filter.append(new Option(t(key), value));
  const live = el("p", { id: "inbox-live", className: "detail", role: "status" });
  const message = el("div", { id: "inbox-message" });
  const detail = el("section", { id: "act", "aria-labelledby": "act-title" });
  root.replaceChildren(
    el("h1", { textContent: t("inbox.title", { state }) }),
    el("p", { textContent: t("inbox.intro") }),
    el("label", {}, el("span", { textContent: t("inbox.filter") }), filter),
    live,
    message,
    el("table", { className: "grid" }, headRow(["col.type", "col.actor", "col.case", "col.time", "col.status", "col.route_to"]), table),
    more,
    detail,
  );

  /** @param {Record<string, any>} n */
  const row = (n) => {
    const open = el("button", { type: "button", className: "link", title: text(n.type), textContent: term("type", n.type) });
    open.dataset.id = n.id;
    open.addEventListener("click", () => openAct(n.id, detail, state));
    const status = el("span", { className: `badge ${n.status === "answered" ? "ok" : "pending"}`, textContent: t(`inbox.${n.status === "answered" ? "answered" : "pending"}`) });
    // route_to (docs/DIRECTORY.md): the authority of our directory entry the notice goes to.
    const route = n.route_to && typeof n.route_to === "object" ? [n.route_to.name, n.route_to.authority].filter((v) => typeof v === "string" && v).join(" · ") : null;
    const tr = el("tr", {}, el("td", {}, open), cell(n.actor_state), el("td", {}, caseLink(n.case_ref)), cell(formatTime(n.occurred_at)), el("td", {}, status), cell(route));
    tr.dataset.id = n.id;
    return tr;
  };

  /** @param {boolean} reset */
  async function load(reset) {
    if (reset) {
      view.cursor = null;
      table.replaceChildren();
    }
    try {
      const page = await get("/v1/sovereignty/notices", { status: view.status || null, cursor: view.cursor, limit: PAGE });
      message.replaceChildren();
      for (const n of objects(page.notices)) if (!table.querySelector(`tr[data-id="${CSS.escape(String(n.id))}"]`)) table.append(row(n));
      view.cursor = typeof page.next_cursor === "string" ? page.next_cursor : null;
      more.hidden = !view.cursor;
      if (!table.childElementCount) message.replaceChildren(el("p", { textContent: t("inbox.empty") }));
    } catch (error) {
      failure(message, error);
      more.hidden = true;
    }
  }

  filter.addEventListener("change", () => {
    const status = filter.value;
    view.status = status === "pending" || status === "answered" ? status : "";
    void load(true);
  });
  more.addEventListener("click", () => void load(false));
  void load(true);
  // Live: a record event of a foreign act on our territory; the notice itself (its status,
  // its route) is read back from the notices route, so what is shown is what a reload shows.
  view.stop = stream(
    "/v1/events",
    { territorial_state: state, foreign: true },
    (event) => {
      if (event.event === "record") void load(false);
    },
    (s) => {
      live.textContent = t(s === "open" ? "inbox.live" : "inbox.offline");
      live.dataset.state = s;
    },
  );
  // Our own answers are not foreign acts, so they come on a second stream: when one
  // commits, a notice may have turned answered, and the list is read again from the start.
  const stopAnswers = stream(
    "/v1/events",
    { state, type: "sovereignty_response" },
    (event) => {
      if (event.event === "record") void load(true);
    },
  );
  return () => {
    view.stop?.();
    stopAnswers();
  };
}

// --- the desk ----------------------------------------------------------------------------

/** @param {string} state @returns {Promise<Record<string, any>[]>} */
async function ourRequests(state) {
  /** @type {import("../../types/openapi").components["schemas"]["SearchRow"][]} */
  const out = [];
  /** @type {string | null} */
  let cursor = null;
  do {
    /** @type {import("../../types/openapi").components["schemas"]["SearchPage"]} */
    const page = await get("/v1/search", { actor_state: state, cursor, limit: 100 });
    out.push(...page.results);
    cursor = page.next_cursor;
  } while (cursor && out.length < DESK_ACTS_MAX);
  /** @type {Record<string, any>[]} */
  const acts = [];
  for (const hit of out.slice(-DESK_ACTS_MAX).reverse()) {
    try {
      acts.push(object(await get(`/v1/acts/${encodeURIComponent(hit.id)}`)));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status >= 500) throw error;
    }
  }
  // Requests are what others answer: an act whose type nothing answers has lifecycle null.
  return acts.filter((a) => a.lifecycle);
}

/** @typedef {"case" | "state" | "type" | "instrument"} Filter */
/** @typedef {Record<Filter, string>} Facts */
const FILTERS = /** @type {Filter[]} */ (["case", "state", "type", "instrument"]);

/** @param {HTMLElement} root @param {string} state @returns {() => void} */
export function desk(root, state) {
  root.dataset.loaded = "false";
  /** @type {Facts} */
  const filters = { case: "", state: "", type: "", instrument: "" };
  /** @type {{acts: Record<string, any>[], deadlines: Record<string, any>[]}} */
  const data = { acts: [], deadlines: [] };
  const message = el("div", { id: "desk-message" });
  const requests = el("tbody", { id: "requests" });
  const clocks = el("tbody", { id: "deadlines" });
  const stats = el("div", { id: "stats" });
  const controls = el("div", { className: "filters" });
  /** @type {Partial<Record<Filter, HTMLSelectElement>>} */
  const selects = {};
  for (const key of FILTERS) {
    const select = el("select", { id: `filter-${key}` });
    select.addEventListener("change", () => {
      filters[key] = select.value;
      render();
    });
    selects[key] = select;
    controls.append(el("label", {}, el("span", { textContent: t(`filter.${key}`) }), select));
  }
  root.replaceChildren(
    el("h1", { textContent: t("desk.title", { state }) }),
    message,
    controls,
    el("h2", { textContent: t("desk.requests") }),
    el("table", { className: "grid" }, headRow(["col.type", "col.case", "col.territory", "col.instrument", "col.time", "act.phase", "act.sovereignty"]), requests),
    el("h2", { textContent: t("desk.deadlines") }),
    el("table", { className: "grid" }, headRow(["col.clock", "col.type", "col.case", "col.due", "col.status"]), clocks),
    el("h2", { textContent: t("desk.stats") }),
    stats,
  );

  /** The act's facts the filters match, each a string ("" when the record has none). @param {Record<string, any>} act @returns {Facts} */
  const facts = (act) => {
    const r = object(object(act.envelope).record);
    /** @param {unknown} v */
    const str = (v) => (typeof v === "string" ? v : "");
    const states = Array.isArray(r.territorial_states) ? r.territorial_states.filter((s) => typeof s === "string") : [];
    return { case: str(r.case_ref), state: states.join(","), type: str(r.type), instrument: str(object(r.legal_basis).instrument) };
  };
  /** @param {Facts} f */
  const keep = (f) => FILTERS.every((k) => !filters[k] || (k === "state" ? f.state.split(",").includes(filters[k]) : f[k] === filters[k]));

  function options() {
    /** @type {Record<Filter, Set<string>>} */
    const seen = { case: new Set(), state: new Set(), type: new Set(), instrument: new Set() };
    for (const act of data.acts) {
      const f = facts(act);
      for (const k of /** @type {Filter[]} */ (["case", "type", "instrument"])) if (f[k]) seen[k].add(f[k]);
      for (const s of f.state.split(",")) if (s) seen.state.add(s);
    }
    for (const k of FILTERS) {
      const select = selects[k];
      if (!select) continue;
      select.replaceChildren(new Option(t("filter.any"), ""), ...[...seen[k]].sort().map((v) => (k === "type" || k === "instrument" ? termOption(k, v) : new Option(v, v))));
      select.value = filters[k];
    }
  }

  function render() {
    requests.replaceChildren();
    const shown = new Set();
    for (const act of data.acts) {
      const f = facts(act);
      if (!keep(f)) continue;
      shown.add(act.id);
      const r = object(object(act.envelope).record);
      const open = el("button", { type: "button", className: "link", title: text(r.type), textContent: term("type", r.type) });
      open.addEventListener("click", () => openAct(act.id, message));
      const tr = el("tr", {}, el("td", {}, open), el("td", {}, caseLink(f.case || null)), cell(f.state), el("td", {}, termNode("instrument", f.instrument || null)), cell(formatTime(r.occurred_at)), el("td", {}, termNode("phase", object(act.lifecycle).phase)), cell(sovereigntyText(act)));
      tr.dataset.id = act.id;
      requests.append(tr);
    }
    clocks.replaceChildren();
    for (const d of data.deadlines) {
      const related = data.acts.find((a) => Array.isArray(d.acts) && d.acts.includes(a.id));
      if (related && !shown.has(related.id)) continue;
      if (!related && Object.values(filters).some(Boolean)) continue;
      const status = DEADLINE_STATUSES.includes(d.status) ? d.status : "running";
      const badge = el("span", { className: `badge deadline-${status}`, textContent: t(`deadline.${status}`) });
      const tr = el("tr", { className: `deadline-${status}` }, el("td", {}, termNode("clock", d.clock), el("div", { className: "detail", textContent: text(d.what) })), el("td", {}, termNode("type", d.type)), cell(d.case_ref), cell(formatTime(d.due_at)), el("td", {}, badge));
      tr.dataset.clock = String(d.clock);
      clocks.append(tr);
    }
    if (!requests.childElementCount) requests.append(el("tr", {}, el("td", { colSpan: 7, textContent: t("desk.none") })));
    if (!clocks.childElementCount) clocks.append(el("tr", {}, el("td", { colSpan: 5, textContent: t("desk.no_deadlines") })));
  }

  /** @param {Record<string, any>} result */
  function renderStats(result) {
    const o = object(result.overall);
    const list = el("dl", { className: "facts" });
    /** @param {string} key @param {unknown} value */
    const fact = (key, value) => list.append(el("dt", { textContent: t(key) }), el("dd", { textContent: text(value) }));
    fact("stats.requests", o.requests);
    fact("stats.answered", o.answered);
    fact("stats.final", o.final);
    fact("stats.backlog", o.backlog);
    fact("stats.median_first", o.first_answer_hours?.median);
    fact("stats.median_final", o.final_answer_hours?.median);
    const groups = el("tbody");
    for (const g of objects(result.groups).slice(0, 200)) {
      groups.append(el("tr", {}, cell(g.state), el("td", {}, termNode("instrument", g.instrument)), el("td", {}, termNode("type", g.type)), cell(g.requests), cell(g.answered), cell(g.final), cell(g.backlog), cell(g.first_answer_hours?.median)));
    }
    const table = el("table", { className: "grid", id: "stats-groups" }, headRow(["filter.state", "filter.instrument", "filter.type", "stats.requests", "stats.answered", "stats.final", "stats.backlog", "stats.median_first"]), groups);
    stats.replaceChildren(list, ...(groups.childElementCount ? [table] : []));
  }

  (async () => {
    try {
      const [acts, due, figures] = await Promise.all([
        ourRequests(state),
        get("/v1/deadlines", { state, status: DEADLINE_STATUSES.join(","), within_days: 365, limit: 100 }),
        get("/v1/stats", { group_by: "state,instrument,type" }),
      ]);
      data.acts = acts;
      data.deadlines = objects(due.items);
      options();
      render();
      renderStats(object(figures));
      root.dataset.loaded = "true";
    } catch (error) {
      failure(message, error);
    }
  })();
  return () => {};
}
