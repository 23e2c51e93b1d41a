// The New act view (#new): a form per act type from GET /v1/schemas, checked here, signed
// here with the tab's key (signui.js), submitted as `comity submit` submits it (sign.js),
// then followed to its commit. The node's refusal is shown on the field it names.

import { ApiError, get } from "./api.js";
import { t } from "./i18n.js";
import { buildForm, controlId, message, showProblems, validate } from "./schemaform.js";
import { completeRecord, nodeRefParties, submission, submit, waitCommitted } from "./sign.js";
import { keyPanel, signer } from "./signui.js";

/** Top-level fields the console fills itself: the common fields, and `sealed` (made by
 * `comity seal`, which encrypts to the recipients' keys; not drawn as a form). */
export const AUTO_FIELDS = new Set(["schema", "type", "chain_id", "actor", "nonce", "occurred_at", "visibility", "sealed"]);

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
 * Sign, submit and follow one record; report to `out`. Shared with the answer dialog.
 * @param {Record<string, any>} record the act without its common fields
 * @param {Record<string, any>} schema its type's schema
 * @param {{visibility: "parties" | "consortium", status: Record<string, any>, fields: Map<string, any>,
 *   out: HTMLElement, readProblems?: import("./schemaform.js").Problem[]}} context
 * @returns {Promise<{id: string, height: number} | null>}
 */
export async function signAndSubmit(record, schema, { visibility, status, fields, out, readProblems = [] }) {
  const say = (/** @type {string} */ text, /** @type {string} */ kind) => {
    out.className = kind;
    out.setAttribute("role", kind === "fail" ? "alert" : "status");
    out.textContent = text;
  };
  const key = signer();
  if (!key) {
    say(t("newact.need_key"), "fail");
    return null;
  }
  const completed = completeRecord(record, { chainId: String(status.chain_id) });
  const problems = [...readProblems, ...validate(schema, completed)];
  const orphans = showProblems(fields, problems);
  if (problems.length) {
    say([t("newact.invalid", { n: problems.length }), ...orphans.map(message)].join(" "), "fail");
    const first = fields.get(problems[0]?.field ?? "")?.control ?? document.querySelector('[aria-invalid="true"]');
    first?.focus?.();
    return null;
  }
  let id;
  try {
    say(t("newact.signing"), "");
    const mode = status.need_to_know === false ? "legacy" : visibility;
    id = await submit(await submission(key, completed, { visibility: mode, refParties: nodeRefParties }));
  } catch (error) {
    const code = error instanceof ApiError ? error.code : "network";
    const field = error instanceof ApiError ? error.field : null;
    const refusal = { field: String(field ?? ""), rule: "server", params: { code, detail: String(error instanceof Error ? error.message : "") } };
    const left = field ? showProblems(fields, [refusal]) : [refusal];
    say(t("newact.refused", { code, field: field ?? "—" }) + (left.length ? "" : ` ${t("newact.see_field")}`), "fail");
    return null;
  }
  say(t("newact.submitted", { id }), "");
  out.dataset.id = id;
  try {
    const { height } = await waitCommitted(id);
    say(t("newact.committed", { id, height }), "pass");
    out.dataset.height = String(height);
    return { id, height };
  } catch (error) {
    say(t("newact.not_committed", { id, code: error instanceof ApiError ? error.code : "network" }), "fail");
    return null;
  }
}

/**
 * The New act view for this node's state.
 * @param {HTMLElement} root @param {string} state
 * @returns {() => void} stop
 */
export function newAct(root, state) {
  const keys = keyPanel("new");
  const type = /** @type {HTMLSelectElement} */ (el("select", { id: "newact-type" }));
  const agency = /** @type {HTMLInputElement} */ (el("input", { id: "newact-agency", type: "text", maxLength: 200, value: t("newact.agency_default", { state }) }));
  const agencyError = el("span", { id: "newact-agency-error", className: "field-error", role: "alert" });
  agency.setAttribute("aria-describedby", "newact-agency-error");
  const visibility = /** @type {HTMLSelectElement} */ (el("select", { id: "newact-visibility" }));
  visibility.append(new Option(t("newact.visibility_parties"), "parties"), new Option(t("newact.visibility_consortium"), "consortium"));
  const slot = el("div", { id: "newact-fields" });
  const out = el("p", { id: "newact-result", role: "status", "aria-live": "polite" });
  const send = el("button", { type: "submit", id: "newact-submit", textContent: t("newact.submit") });
  const form = el(
    "form",
    { id: "newact-form", noValidate: true },
    el("div", { className: "field" }, el("label", { htmlFor: "newact-type", textContent: t("newact.type") }), type),
    el("div", { className: "field" }, el("label", { htmlFor: "newact-agency", textContent: t("newact.agency") }), agency, agencyError),
    el("div", { className: "field" }, el("label", { htmlFor: "newact-visibility", textContent: t("newact.visibility") }), visibility, el("small", { className: "hint", textContent: t("newact.visibility_hint") })),
    slot,
    send,
    out,
  );
  root.dataset.loaded = "false";
  root.replaceChildren(el("h1", { textContent: t("newact.title", { state }) }), el("p", { textContent: t("newact.intro") }), keys.view, form);

  /** @type {{schemas: Record<string, any>, status: Record<string, any>, form: ReturnType<typeof buildForm> | null}} */
  const view = { schemas: {}, status: {}, form: null };
  const draw = () => {
    const schema = view.schemas[type.value];
    view.form = schema ? buildForm(schema, AUTO_FIELDS) : null;
    slot.replaceChildren(...(view.form ? [view.form.view] : []));
    out.textContent = "";
  };
  type.addEventListener("change", draw);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!view.form) return;
    send.setAttribute("disabled", "");
    try {
      const { value, problems } = view.form.read();
      const agencyText = agency.value.trim();
      const record = { type: type.value, actor: { state, agency: agencyText }, ...value };
      const fields = new Map(view.form.fields);
      fields.set("record.actor.agency", { path: "record.actor.agency", control: agency, error: agencyError, read: () => agencyText });
      const chosen = visibility.value === "consortium" ? "consortium" : "parties";
      await signAndSubmit(record, view.schemas[type.value], { visibility: chosen, status: view.status, fields, out, readProblems: problems });
    } finally {
      send.removeAttribute("disabled");
    }
  });
  (async () => {
    try {
      const [catalogue, status] = await Promise.all([get("/v1/schemas"), get("/v1/status")]);
      view.schemas = catalogue.types ?? {};
      view.status = status;
      for (const name of Object.keys(view.schemas).sort()) type.append(new Option(name, name));
      type.value = Object.hasOwn(view.schemas, "preservation_request") ? "preservation_request" : type.options[0]?.value ?? "";
      draw();
      root.dataset.loaded = "true";
    } catch (error) {
      out.className = "fail";
      out.textContent = t("access.error", { code: error instanceof ApiError ? error.code : "network" });
    }
  })();
  return keys.stop;
}

export { controlId };
