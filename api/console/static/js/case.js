// The Case view (issue 21): a case's timeline across states, its sovereignty answers, the
// custody of each evidence hash drawn as a chain, and the downloads a court needs (the case
// bundle and the judge's PDF certificate). Every block of the timeline carries the mark
// live.js computes in this browser. Every string from the chain is set as text.

import { ApiError, get, getToken, url } from "./api.js";
import { t } from "./i18n.js";
import { apiGet, liveVerifier, markElement, pinControls } from "./live.js";
import { el, failure, formatTime } from "./ui.js";

/** Entries read for one case (the timeline route's pages of 100). */
export const CASE_ENTRIES_MAX = 500;
/** Evidence hashes whose custody is drawn. */
export const CASE_HASHES_MAX = 50;
export const CERTIFICATE_LANGUAGES = ["en", "fr", "zh"];
const CASE_REF_CHARS_MAX = 128;

const text = (/** @type {unknown} */ value) => (value === null || value === undefined || value === "" ? "—" : String(value));
const cell = (/** @type {unknown} */ value) => el("td", { textContent: text(value) });
const isObject = (/** @type {unknown} */ v) => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (/** @type {unknown} */ v) => (Array.isArray(v) ? v : []);

/**
 * Whether `ref` may be a case_ref: 1-128 characters, none of them a control character.
 * @param {unknown} ref
 */
export function validCaseRef(ref) {
  return typeof ref === "string" && ref.length >= 1 && ref.length <= CASE_REF_CHARS_MAX && !/[\u0000-\u001f\u007f]/.test(ref);
}

/**
 * A link to the Case view of `ref` (or its text, when it cannot be a case_ref).
 * @param {unknown} ref
 */
export function caseLink(ref) {
  if (!validCaseRef(ref)) return document.createTextNode(text(ref));
  return el("a", { href: `#case/${encodeURIComponent(/** @type {string} */ (ref))}`, className: "case-link", textContent: String(ref) });
}

/**
 * GET a file with the tab's token (a header, so not a bare link) and hand it to the
 * browser as a download from an object URL.
 * @param {string} path
 * @param {Record<string, string>} params
 * @param {string} name the file name offered
 */
export async function download(path, params, name) {
  /** @type {Record<string, string>} */
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const reply = await fetch(url(path, params), { headers, credentials: "omit", cache: "no-store" });
  if (!reply.ok) {
    /** @type {{code?: unknown, field?: unknown, message?: unknown}} */
    let error = {};
    try {
      const body = await reply.json();
      error = isObject(body?.error) ? body.error : {};
    } catch {
      // not JSON: the status says it
    }
    throw new ApiError(reply.status, String(error.code ?? `http_${reply.status}`), typeof error.field === "string" ? error.field : null, typeof error.message === "string" ? error.message : undefined);
  }
  const blob = await reply.blob();
  const href = URL.createObjectURL(blob);
  const link = el("a", { href, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return blob;
}

/** @param {string} ref */
async function timeline(ref) {
  const entries = [];
  let cursor = null;
  do {
    /** @type {any} */
    const page = await get(`/v1/cases/${encodeURIComponent(ref)}`, { cursor, limit: 100 });
    entries.push(...list(page.entries).filter(isObject));
    cursor = typeof page.next_cursor === "string" ? page.next_cursor : null;
  } while (cursor && entries.length < CASE_ENTRIES_MAX);
  return entries.slice(0, CASE_ENTRIES_MAX);
}

/** The act view of an entry, or null for a record that is not an act. @param {any} entry */
async function actOf(entry) {
  try {
    return await get(`/v1/acts/${encodeURIComponent(String(entry.id))}`);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 400 || error.status === 404)) return null;
    throw error;
  }
}

/** @param {any} entry @param {any} act */
function status(entry, act) {
  for (const key of ["response", "status", "decision", "outcome", "action", "phase"]) {
    if (typeof entry[key] === "string") return entry[key];
  }
  return act?.lifecycle ? t(`phase.${act.lifecycle.phase}`) : null;
}

/** The answers to an act, each with its conditions. @param {any} act */
function answersList(act) {
  const out = el("ul", { className: "answers" });
  for (const a of list(act?.answers).filter(isObject)) {
    const what = [a.state, a.type, a.answer, a.final ? t("case.final") : null, a.ground].filter((v) => typeof v === "string" && v).join(" · ");
    const item = el("li", { textContent: `${what} — ${formatTime(a.occurred_at)}` });
    const conditions = list(a.conditions).filter((c) => typeof c === "string");
    if (conditions.length) item.append(el("div", { className: "detail", textContent: t("case.conditions", { conditions: conditions.join("; ") }) }));
    out.append(item);
  }
  return out.childElementCount ? out : document.createTextNode("—");
}

/** @param {any} act */
function basis(act) {
  const b = act?.envelope?.record?.legal_basis;
  if (!isObject(b)) return null;
  return [b.instrument, b.article].filter((v) => typeof v === "string" && v).join(", ");
}

/** The custody chains of one hash: boxes and arrows, an ordered list for every reader. @param {string} sha @param {any} view */
function custodyOf(sha, view) {
  const section = el("section", { className: "custody" });
  section.dataset.sha256 = sha;
  section.append(el("h3", {}, el("code", { textContent: sha })));
  for (const chain of list(view.custody_chains).filter(isObject)) {
    const flags = el("p", { className: "flags" });
    const flag = (/** @type {string} */ cls, /** @type {string} */ words) => flags.append(el("span", { className: `badge ${cls}`, textContent: words }), " ");
    flag(chain.integrity === "hash_mismatch" || chain.status === "hash_mismatch" ? "custody-mismatch" : "ok", t(chain.integrity === "hash_mismatch" || chain.status === "hash_mismatch" ? "case.hash_mismatch" : "case.intact"));
    if (chain.status === "in_transit" || isObject(chain.in_transit)) {
      const transit = isObject(chain.in_transit) ? chain.in_transit : {};
      flag("custody-transit", t("case.in_transit", { from: text(transit.from?.state ?? transit.from), to: text(transit.to?.state ?? transit.to), since: formatTime(transit.since) }));
    }
    flag("pending", t("case.holder", { holder: text(chain.holder?.state ?? chain.holder) }));
    const steps = el("ol", { className: "chain" });
    for (const e of list(chain.events).filter(isObject)) {
      const to = isObject(e.to) ? [e.to.state, e.to.agency].filter(Boolean).join(" · ") : null;
      const box = el("li", { className: e.hash_check === "mismatch" || (e.recomputed_sha256 && e.recomputed_sha256 !== sha) ? "step mismatch" : "step" });
      box.append(el("strong", { textContent: text(e.action) }), el("div", { textContent: to ? `${text(e.actor_state)} → ${to}` : text(e.actor_state) }), el("div", { className: "detail", textContent: formatTime(e.occurred_at) }));
      for (const extra of [e.location, e.purpose, e.hash_check ? t("case.hash_check", { check: e.hash_check }) : null]) {
        if (typeof extra === "string" && extra) box.append(el("div", { className: "detail", textContent: extra }));
      }
      steps.append(box);
    }
    const anomalies = el("ul", { className: "anomalies" });
    for (const a of list(chain.anomalies).filter(isObject)) {
      anomalies.append(el("li", { className: "fail", textContent: `⚠ ${text(a.code)}${typeof a.message === "string" ? `: ${a.message}` : ""}` }));
    }
    section.append(el("p", { textContent: t("case.introduced", { by: text(chain.introduced_by), ref: text(chain.ref) }) }), flags, steps);
    if (anomalies.childElementCount) section.append(el("h4", { textContent: t("case.anomalies") }), anomalies);
  }
  return section;
}

/**
 * The Case view of `ref` in `root`; returns a stop function.
 * @param {HTMLElement} root
 * @param {string} ref
 */
export function caseView(root, ref) {
  root.dataset.loaded = "false";
  root.dataset.marked = "false";
  if (!validCaseRef(ref)) {
    root.replaceChildren(el("h1", { textContent: t("case.title", { ref: "—" }) }), el("p", { className: "fail", role: "alert", textContent: t("case.bad_ref") }));
    return () => {};
  }
  const message = el("div", { id: "case-message" });
  const rows = el("tbody", { id: "case-timeline" });
  const answers = el("tbody", { id: "case-sovereignty" });
  const custody = el("div", { id: "case-custody" });
  const got = el("p", { id: "case-download-state", role: "status" });
  const lang = el("select", { id: "certificate-lang" });
  for (const code of CERTIFICATE_LANGUAGES) lang.append(new Option(code, code));
  lang.value = CERTIFICATE_LANGUAGES.includes(document.documentElement.lang) ? document.documentElement.lang : "en";
  const bundleButton = el("button", { type: "button", id: "case-bundle", textContent: t("case.download_bundle") });
  const certButton = el("button", { type: "button", id: "case-certificate", textContent: t("case.download_certificate") });
  const safe = ref.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100);
  const fetchFile = async (/** @type {string} */ path, /** @type {Record<string, string>} */ params, /** @type {string} */ name) => {
    got.textContent = t("case.downloading");
    got.className = "";
    try {
      const blob = await download(path, params, name);
      got.textContent = t("case.downloaded", { name, bytes: blob.size });
      got.className = "pass";
    } catch (error) {
      failure(got, error);
    }
  };
  bundleButton.addEventListener("click", () => fetchFile(`/v1/cases/${encodeURIComponent(ref)}/bundle`, {}, `case-${safe}.bundle.json`));
  certButton.addEventListener("click", () => fetchFile(`/v1/cases/${encodeURIComponent(ref)}/certificate`, { lang: lang.value }, `certificate-${safe}-${lang.value}.pdf`));
  const redraw = () => caseView(root, ref);
  root.replaceChildren(
    el("h1", { textContent: t("case.title", { ref }) }),
    pinControls(apiGet, redraw),
    el("div", { className: "downloads" }, bundleButton, el("label", {}, el("span", { textContent: t("case.certificate_lang") }), lang), certButton),
    got,
    message,
    el("h2", { textContent: t("case.timeline") }),
    scroller(el("table", { className: "grid timeline" }, head(["case.when", "case.who", "col.territory", "col.type", "case.basis", "col.status", "act.answers", "case.block"]), rows), t("case.timeline")),
    el("h2", { textContent: t("case.sovereignty") }),
    el("table", { className: "grid" }, head(["col.type", "case.act", "col.territory", "case.answer"]), answers),
    el("h2", { textContent: t("case.custody") }),
    custody,
  );
  let stopped = false;
  (async () => {
    try {
      const entries = await timeline(ref);
      /** @type {any[]} */
      const acts = [];
      for (const entry of entries) acts.push(await actOf(entry));
      if (stopped) return;
      const verifier = liveVerifier(apiGet);
      /** @type {[string, number, HTMLElement][]} */
      const toMark = [];
      entries.forEach((entry, i) => {
        const act = acts[i];
        const who = [entry.actor_state, entry.agency].filter((v) => typeof v === "string" && v).join(" · ");
        const block = el("td", { className: "block-mark" });
        if (Number.isSafeInteger(entry.height)) {
          block.append(el("span", { textContent: t("case.height", { height: entry.height }) }), " ");
          toMark.push([String(entry.id), entry.height, block]);
        }
        const tr = el("tr", {}, cell(formatTime(entry.occurred_at)), cell(who), cell(list(entry.territorial_states).join(", ")), cell(entry.type), cell(basis(act)), cell(status(entry, act)), el("td", {}, answersList(act)), block);
        tr.dataset.id = String(entry.id);
        rows.append(tr);
        for (const [state, answer] of Object.entries(isObject(act?.sovereignty) ? act.sovereignty : {})) {
          const row = el("tr", {}, cell(entry.type), el("td", {}, el("code", { textContent: String(entry.id).slice(0, 16) })), cell(state), cell(answer));
          row.dataset.state = state;
          answers.append(row);
        }
      });
      if (!rows.childElementCount) rows.append(el("tr", {}, el("td", { colSpan: 8, textContent: t("case.empty") })));
      if (!answers.childElementCount) answers.append(el("tr", {}, el("td", { colSpan: 4, textContent: t("case.no_sovereignty") })));
      /** @type {string[]} */
      const hashes = [];
      for (const act of acts) {
        for (const item of list(act?.envelope?.record?.evidence).filter(isObject)) {
          if (typeof item.sha256 === "string" && /^[0-9a-f]{64}$/.test(item.sha256) && !hashes.includes(item.sha256)) hashes.push(item.sha256);
        }
      }
      for (const sha of hashes.slice(0, CASE_HASHES_MAX)) {
        try {
          custody.append(custodyOf(sha, await get(`/v1/evidence/${sha}`)));
        } catch (error) {
          const note = el("p");
          failure(note, error);
          custody.append(el("h3", {}, el("code", { textContent: sha })), note);
        }
      }
      if (!custody.childElementCount) custody.append(el("p", { textContent: t("case.no_custody") }));
      root.dataset.loaded = "true";
      // Each row's mark: its block's, then the record itself in that block (live.js).
      const blocks = new Map();
      for (const [id, height, target] of toMark) {
        if (stopped) return;
        let mark;
        try {
          if (!blocks.has(height)) blocks.set(height, await get(`/v1/blocks/${height}`));
          mark = await verifier.markRecord(id, blocks.get(height));
        } catch (error) {
          mark = { ok: false, code: "unavailable", detail: String(/** @type {any} */ (error)?.code ?? error), height, genesisHash: verifier.genesisHash, pinned: verifier.pinnedHash !== null };
        }
        target.append(markElement(mark));
      }
      root.dataset.marked = "true";
    } catch (error) {
      failure(message, error);
    }
  })();
  return () => {
    stopped = true;
  };
}

/**
 * A wide table in a region that scrolls sideways, reachable (and scrolled) by keyboard.
 * @param {HTMLElement} table
 * @param {string} label
 */
export function scroller(table, label) {
  const region = el("div", { className: "scroll", tabIndex: 0, role: "region" }, table);
  region.setAttribute("aria-label", label);
  return region;
}

/** @param {string[]} keys */
function head(keys) {
  return el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { scope: "col", textContent: t(k) }))));
}
