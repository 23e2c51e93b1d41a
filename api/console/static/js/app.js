// The console shell: the language switch and the Verify page (the first view of issue 21).
// Everything is checked here, in the browser: the files dropped on the page are read
// locally and never sent anywhere, and no script or style comes from another origin.

import { chooseLanguage, isLanguage, LANGUAGES, setLanguage, t } from "./i18n.js";
import { ApiError, forgetToken, get, getToken, setToken } from "./api.js";
import { AuditFailure } from "./bundle.js";
import { hashEvidence, verifyText } from "./verify.js";
import { caseView } from "./case.js";
import { chainView } from "./chain.js";
import { desk, inbox } from "./views.js";
import { newAct } from "./newact.js";

/** @typedef {import("./bundle.js").BundleReport} BundleReport */

/** The element the shell (index.html) must have; a shell without it is a broken deployment.
 * @param {string} id @returns {HTMLElement} */
function $(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the console's page has no #${id}`);
  return element;
}

/** An element of a given kind, checked as $ checks its presence.
 * @template {HTMLElement} E @param {string} id @param {{new (): E, name: string}} kind @returns {E} */
function $as(id, kind) {
  const element = $(id);
  if (!(element instanceof kind)) throw new Error(`the console's page's #${id} is not a ${kind.name}`);
  return element;
}

/** @typedef {"bundle" | "genesis" | "evidence"} FileKind */
/** @type {{bundle: File | null, genesis: File | null, evidence: File[]}} */
const files = { bundle: null, genesis: null, evidence: [] };

/** @param {string} iso @returns {string} */
function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  const local = new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: "medium", timeStyle: "medium" }).format(when);
  return `${local} (${iso} UTC)`.replace("Z UTC", " UTC");
}

/**
 * @param {boolean} ok @param {string} title @param {string | null | undefined} detail
 * @param {string | null | undefined} code @returns {HTMLLIElement}
 */
function item(ok, title, detail, code) {
  const li = document.createElement("li");
  li.className = ok ? "pass" : "fail";
  const mark = document.createElement("span");
  mark.className = "mark";
  mark.textContent = ok ? "✓" : "✗";
  mark.setAttribute("aria-label", t(ok ? "verify.pass" : "verify.fail"));
  const name = document.createElement("strong");
  name.textContent = title;
  li.append(mark, " ", name);
  if (code) {
    const reason = document.createElement("code");
    reason.textContent = code;
    li.append(" ", reason, " ", t(`reason.${code}`));
  }
  if (detail) {
    const small = document.createElement("div");
    small.className = "detail";
    small.textContent = detail;
    li.append(small);
  }
  return li;
}

/** @param {{check: string, height?: number | null}} check @returns {string} */
function checkTitle(check) {
  const height = check.height === null || check.height === undefined ? "" : t("verify.at_height", { height: check.height });
  return `${t(`check.${check.check}`)}${height}`;
}

/** @param {BundleReport} report @returns {string[]} */
function renderReport(report) {
  const lines = [t("report.chain", { chain: report.chainId, hash: report.genesisHash }), t("report.blocks", { n: report.blocks })];
  for (const change of report.changes) lines.push(t("report.change", { change }));
  for (const r of report.records) {
    lines.push(t("report.record", { id: r.id, type: r.record.type, state: r.record.actor?.state ?? "-" }));
    lines.push(t("report.committed", { height: r.height, time: formatTime(r.blockTime), by: r.committedBy.join(", ") }));
    for (const name of r.evidenceFiles) lines.push(t("report.evidence_file", { name }));
  }
  if (report.latest) lines.push(t("report.latest", { height: report.latest[0], size: report.latest[1] }));
  lines.push(report.pinned ? t("report.ok") : t("report.unpinned"));
  return lines;
}

async function run() {
  const out = $("checks");
  const summary = $("summary");
  out.replaceChildren();
  summary.textContent = t("verify.running");
  if (!files.bundle) {
    summary.textContent = t("verify.need_bundle");
    return;
  }
  /** @type {import("./bundle.js").Evidence[]} */
  const evidence = [];
  try {
    for (const file of files.evidence) evidence.push(await hashEvidence(file));
  } catch (error) {
    // hashEvidence refuses with an AuditFailure; the browser's file read may fail otherwise
    const code = error instanceof AuditFailure ? error.code : null;
    const detail = error instanceof AuditFailure ? error.detail : error instanceof Error ? error.message : String(error);
    out.append(item(false, t("check.evidence"), detail, code));
    summary.textContent = t("verify.failed");
    return;
  }
  const { checks, report, failure } = await verifyText(await files.bundle.text(), {
    genesisText: files.genesis ? await files.genesis.text() : null,
    genesisHashText: $as("genesis-hash", HTMLInputElement).value,
    evidence,
  });
  for (const check of checks) out.append(item(check.ok, checkTitle(check), check.detail, check.code));
  const pinned = failure === null && report !== null && report.pinned;
  summary.className = failure || report === null ? "fail" : pinned ? "pass" : "warn";
  summary.textContent = failure || report === null ? t("verify.failed") : pinned ? t("verify.ok") : t("verify.unpinned");
  const lines = report ? renderReport(report) : [];
  $("report").replaceChildren(...lines.map((line) => Object.assign(document.createElement("li"), { textContent: line })));
}

/** @param {FileKind} kind @param {FileList | File[] | null} list */
function pick(kind, list) {
  const chosen = list ? [...list] : [];
  if (kind === "evidence") files.evidence = chosen;
  else files[kind] = chosen[0] ?? null;
  const names = kind === "evidence" ? files.evidence.map((f) => f.name).join(", ") : files[kind]?.name;
  $(`${kind}-name`).textContent = names || "";
}

function wire() {
  for (const kind of /** @type {FileKind[]} */ (["bundle", "genesis", "evidence"])) {
    const input = $as(`${kind}-file`, HTMLInputElement);
    input.addEventListener("change", () => pick(kind, input.files));
  }
  const zone = $("drop");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    // A dropped file that is a genesis (no "format") pins; anything else is the bundle.
    for (const file of event.dataTransfer?.files ?? []) {
      /** @type {FileKind} */
      let kind = "bundle";
      try {
        const doc = JSON.parse(await file.slice(0, 16 * 1024 * 1024).text());
        if (doc && typeof doc === "object" && !("format" in doc) && "members" in doc) kind = "genesis";
      } catch {
        kind = files.bundle ? "evidence" : "bundle";
      }
      if (kind === "evidence") pick("evidence", [...files.evidence, file]);
      else pick(kind, [file]);
    }
  });
  $("verify-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void run();
  });
  const select = $as("language", HTMLSelectElement);
  for (const [code, { name }] of Object.entries(LANGUAGES)) select.append(new Option(name, code));
  select.addEventListener("change", async () => {
    const lang = select.value;
    if (!isLanguage(lang)) return; // the options are LANGUAGES' codes
    sessionStorage.setItem("comity.lang", lang);
    await setLanguage(lang);
    showToken();
    route();
  });
}

/** `comity devnet` prints each state's console URL as `/#token=…`: the fragment is never
 * sent to the server (browsers keep it out of the request); the page moves the token into
 * this tab's sessionStorage and takes it out of the address bar and the history at once. */
function takeTokenFromFragment() {
  const match = /^#token=([^&]*)/.exec(location.hash);
  if (!match) return;
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  let secret = "";
  try {
    secret = decodeURIComponent(match[1] ?? "");
  } catch {
    secret = "";
  }
  setToken(secret);
}

// --- access and the views ----------------------------------------------------------------

const VIEWS = ["inbox", "desk", "new", "verify"];
/** @type {{state: string | null, stop: () => void}} */
const session = { state: null, stop: () => {} };
VIEWS.push("chain", "case"); // the Chain view and the Case view (#case/<case_ref>)

function showToken() {
  const has = Boolean(getToken());
  $("token-forget").hidden = !has;
  $("token-state").textContent = t(has ? "access.kept" : "access.none");
}

/** What this tab may see: the node's status (its state) decides whether the inbox and the
 * desk are shown at all; a 401 or 403 hides them and says why. */
async function probe() {
  const message = $("access-message");
  message.textContent = "";
  try {
    const status = await get("/v1/status");
    const state = String(status.state ?? "");
    session.state = /^[A-Z]{2}$/.test(state) ? state : null;
  } catch (error) {
    session.state = null;
    const status = error instanceof ApiError ? error.status : 0;
    const code = error instanceof ApiError ? error.code : "network";
    message.textContent = t(status === 401 ? "access.unauthorized" : status === 403 ? "access.forbidden" : "access.error", { code });
  }
  for (const view of ["inbox", "desk", "new"]) $(`nav-${view}`).hidden = session.state === null;
  route();
}

function route() {
  session.stop();
  session.stop = () => {};
  // #case/<ref>: the view's name, then its argument (the case_ref, URI-encoded).
  const [name0, ...rest] = location.hash.replace(/^#/, "").split("/");
  let view = name0 ?? "";
  let arg = "";
  try {
    arg = decodeURIComponent(rest.join("/"));
  } catch {
    arg = "";
  }
  if (!VIEWS.includes(view) || (view !== "verify" && session.state === null)) view = "verify";
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== view;
    const link = document.getElementById(`nav-${name}`);
    if (!link) continue; // the Case view is reached from a case, not from the menu
    if (name === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("nav-chain").hidden = session.state === null;
  if (view === "chain") session.stop = chainView($("view-chain"));
  if (view === "case") session.stop = caseView($("view-case"), arg);
  // every view but verify was sent to verify above while session.state is null
  const state = session.state ?? "";
  if (view === "inbox") session.stop = inbox($("view-inbox"), state);
  if (view === "desk") session.stop = desk($("view-desk"), state);
  if (view === "new") session.stop = newAct($("view-new"), state);
  document.body.dataset.view = view;
}

function wireAccess() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $as("token", HTMLInputElement);
    if (!setToken(input.value)) {
      $("token-state").textContent = t("access.bad_token");
      return;
    }
    input.value = "";
    showToken();
    void probe();
  });
  $("token-forget").addEventListener("click", () => {
    forgetToken();
    showToken();
    void probe();
  });
  window.addEventListener("hashchange", route);
}

async function start() {
  takeTokenFromFragment(); // before anything reads the URL or the token
  const lang = chooseLanguage(sessionStorage.getItem("comity.lang"), navigator.languages);
  wire();
  wireAccess();
  $as("language", HTMLSelectElement).value = lang;
  await setLanguage(lang);
  showToken();
  await probe();
  document.body.dataset.ready = "true";
}

void start();
