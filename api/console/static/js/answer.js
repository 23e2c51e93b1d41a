// Answering a notice from the inbox: the territorial state's sovereignty_response
// (docs/ACTS.md §1, §4: acknowledged, consented, objected or refused; objected and refused
// need a reason and may give a ground of §15; consented may carry conditions), signed in
// the browser with the authority's key and submitted as `comity submit` would. The
// values and grounds are the catalogue's (GET /v1/schemas), never a list of our own.

import { ApiError, get } from "./api.js";
import { t } from "./i18n.js";
import { signAndSubmit } from "./newact.js";
import { unwrap } from "./schemaform.js";
import { keyPanel } from "./signui.js";

export const ANSWER_TYPE = "sovereignty_response";

/** A value from the chain, isolated (U+2068 … U+2069) so it keeps its order in Arabic. @param {string} text */
const isolate = (text) => `\u2068${text}\u2069`;

/**
 * @param {string} tag @param {Record<string, any>} [props] @param {...(Node | string | null)} children
 * @returns {HTMLElement}
 */
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

/**
 * Whether `state` answers this act: a foreign act naming it territorial, of a type that
 * has a legal lifecycle (a request; not itself an answer).
 * @param {Record<string, any>} act GET /v1/acts/{id} @param {string | null} state
 */
export function answerable(act, state) {
  const facts = actFacts(act);
  return Boolean(state && act.lifecycle && facts.type !== ANSWER_TYPE && facts.actor !== state && facts.territorial.includes(state));
}

/**
 * What the act is, from the view's summary (a private act's content, which its parties'
 * tokens see), else from the signed record.
 * @param {Record<string, any>} act GET /v1/acts/{id}
 */
export function actFacts(act) {
  const record = act.envelope?.record ?? {};
  const territorial = Array.isArray(act.territorial_states) ? act.territorial_states : record.territorial_states ?? [];
  return {
    type: String(act.type ?? record.type),
    actor: String(act.actor_state ?? record.actor?.state),
    case: String(act.case_ref ?? record.case_ref),
    territorial: /** @type {string[]} */ (territorial),
  };
}

/**
 * The choices the catalogue gives an answer: its `response` values and its `ground` vocabulary.
 * @param {Record<string, any>} schema the sovereignty_response schema
 */
export function answerChoices(schema) {
  const resolve = (/** @type {Record<string, any>} */ s) => s;
  const enumOf = (/** @type {string} */ name) => {
    const prop = schema.properties?.[name];
    return prop ? unwrap(prop, resolve).schema.enum ?? [] : [];
  };
  return { responses: /** @type {string[]} */ (enumOf("response")), grounds: /** @type {string[]} */ (enumOf("ground")) };
}

/**
 * An "Answer" button for an opened act, with its dialog; null when `state` does not answer it.
 * @param {Record<string, any>} act @param {string | null} state
 * @returns {HTMLElement | null}
 */
export function answerButton(act, state) {
  if (!answerable(act, state)) return null;
  const open = el("button", { type: "button", id: "answer-open", textContent: t("answer.open") });
  open.addEventListener("click", () => openDialog(act, /** @type {string} */ (state), open));
  return open;
}

/**
 * @param {string} id @param {string} key @param {HTMLElement} control @param {string} [hintKey]
 */
function row(id, key, control, hintKey) {
  control.id = id;
  const error = el("span", { id: `${id}-error`, className: "field-error", role: "alert" });
  const parts = [el("label", { htmlFor: id, textContent: t(key) }), control];
  if (hintKey) parts.push(el("small", { id: `${id}-hint`, className: "hint", textContent: t(hintKey) }));
  control.setAttribute("aria-describedby", hintKey ? `${id}-hint ${id}-error` : `${id}-error`);
  return { view: el("div", { className: "field" }, ...parts, error), error };
}

/**
 * @param {Record<string, any>} act @param {string} state @param {HTMLElement} opener focus returns here
 */
async function openDialog(act, state, opener) {
  const facts = actFacts(act);
  const out = el("p", { id: "answer-result", role: "status", "aria-live": "polite" });
  let schema;
  let status;
  try {
    [schema, status] = await Promise.all([get("/v1/schemas").then((c) => /** @type {Record<string, any>} */ (c.types ?? {})[ANSWER_TYPE]), get("/v1/status")]);
    if (!schema) throw new ApiError(0, "no_answer_schema", null, "the catalogue has no sovereignty_response");
  } catch (error) {
    opener.after(el("p", { className: "fail", role: "alert", textContent: t("access.error", { code: error instanceof ApiError ? error.code : "network" }) }));
    return;
  }
  const { responses, grounds } = answerChoices(schema);
  const response = /** @type {HTMLSelectElement} */ (el("select"));
  for (const value of responses) response.append(new Option(t(`answer.response.${value}`) === `answer.response.${value}` ? value : t(`answer.response.${value}`), value));
  const ground = /** @type {HTMLSelectElement} */ (el("select"));
  ground.append(new Option(t("answer.no_ground"), ""));
  for (const value of grounds) ground.append(new Option(value.replace(/_/g, " "), value));
  const reason = /** @type {HTMLTextAreaElement} */ (el("textarea", { rows: 3, maxLength: 2000 }));
  const conditions = /** @type {HTMLTextAreaElement} */ (el("textarea", { rows: 2 }));
  const agency = /** @type {HTMLInputElement} */ (el("input", { type: "text", maxLength: 200, value: t("answer.agency_default", { state }) }));
  const rows = {
    response: row("answer-response", "answer.response", response),
    ground: row("answer-ground", "answer.ground", ground, "answer.ground_hint"),
    reason: row("answer-reason", "answer.reason", reason, "answer.reason_hint"),
    conditions: row("answer-conditions", "answer.conditions", conditions, "answer.conditions_hint"),
    agency: row("answer-agency", "answer.agency", agency),
  };
  const keys = keyPanel("answer");
  const send = el("button", { type: "submit", id: "answer-submit", textContent: t("answer.submit") });
  const close = el("button", { type: "button", id: "answer-close", textContent: t("answer.close") });
  const title = el("h2", { id: "answer-title", textContent: t("answer.title", { type: isolate(facts.type), state: isolate(facts.actor), case: isolate(facts.case) }) });
  const form = el("form", { id: "answer-form", noValidate: true }, rows.response.view, rows.ground.view, rows.reason.view, rows.conditions.view, rows.agency.view, send, close, out);
  const dialog = /** @type {HTMLDialogElement} */ (el("dialog", { id: "answer-dialog", className: "answer" }, title, el("p", { className: "detail", textContent: t("answer.intro") }), keys.view, form));
  dialog.setAttribute("aria-labelledby", "answer-title");
  const sync = () => {
    const needsReason = response.value === "objected" || response.value === "refused";
    rows.ground.view.hidden = !needsReason;
    rows.reason.view.hidden = !needsReason;
    rows.conditions.view.hidden = response.value !== "consented";
  };
  response.addEventListener("change", sync);
  sync();
  /** @type {Map<string, import("./schemaform.js").FieldNode>} */
  const fields = new Map(
    Object.entries({ response, ground, reason, conditions }).map(([name, control]) => [`record.${name}`, { path: `record.${name}`, control, error: rows[/** @type {"response"} */ (name)].error, read: () => undefined }]),
  );
  fields.set("record.actor.agency", { path: "record.actor.agency", control: agency, error: rows.agency.error, read: () => undefined });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.setAttribute("disabled", "");
    try {
      /** @type {Record<string, any>} */
      const answer = {
        type: ANSWER_TYPE,
        actor: { state, agency: agency.value.trim() },
        case_ref: facts.case,
        territorial_states: [state],
        refs: [act.id],
        response: response.value,
      };
      const needsReason = response.value === "objected" || response.value === "refused";
      if (needsReason && reason.value.trim()) answer.reason = reason.value.trim();
      if (needsReason && ground.value) answer.ground = ground.value;
      const listed = conditions.value.split("\n").map((l) => l.trim()).filter(Boolean);
      if (response.value === "consented" && listed.length) answer.conditions = listed;
      const readProblems = needsReason && !answer.reason ? [{ field: "record.reason", rule: "required", params: {} }] : [];
      const done = await signAndSubmit(answer, schema, { visibility: "parties", status, fields, out, readProblems });
      if (done) dialog.dataset.answered = "true";
    } finally {
      send.removeAttribute("disabled");
    }
  });
  const finish = () => {
    keys.stop();
    dialog.remove();
    opener.focus();
  };
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", finish);
  document.body.append(dialog);
  dialog.showModal();
  response.focus();
}
