// The catalogue's vocabulary in the page's language (issue 21). The API speaks in
// identifiers (`preservation_request`, `objected`, `territoriality`, `case_ref`…); the views
// show each one's translated label from the i18n files, under the key
// `vocab.<kind>.<identifier>`, and keep the identifier itself beside it (a `title`, or a
// <code>), since a clerk cites the identifier and an API error names it. A missing key shows
// the identifier: never an empty label. tests/unit/test_console_vocab.py derives every
// identifier the console can show from the catalogue and fails on one without a key.

import { el } from "./ui.js";
import { t } from "./i18n.js";

/**
 * The kinds of identifier, each a key prefix: `vocab.<kind>.<identifier>`.
 * `proposal`, `outcome` and `slot` are governance's: a member proposal's action, its
 * status, and the kind of message a misbehaviour report's two signatures share.
 * @typedef {"type" | "field" | "instrument" | "ground" | "answer" | "status" | "phase" | "action" | "clock" | "value" | "proposal" | "outcome" | "slot"} Kind
 */

/** @type {Record<string, Kind>} the kind of an enum field's values, by the field's name */
const ENUM_KINDS = {
  type: "type",
  response: "answer",
  ground: "ground",
  action: "action",
  status: "status",
  decision: "status",
  outcome: "status",
  phase: "phase",
  instrument: "instrument",
};

/** The kind of the values of the enum field `name`. @param {string} name @returns {Kind} */
export function enumKind(name) {
  return Object.hasOwn(ENUM_KINDS, name) ? /** @type {Kind} */ (ENUM_KINDS[name]) : "value";
}

/** An instrument id's kind: `bilateral_mlat:TH` -> `bilateral_mlat`. @param {string} id */
const instrumentKind = (id) => id.split(":")[0] ?? id;

/**
 * The label of `value` of `kind` in the page's language; the identifier itself when the
 * i18n files have no key for it, and "—" for no value.
 * @param {Kind} kind @param {unknown} value @returns {string}
 */
export function term(kind, value) {
  if (value === null || value === undefined || value === "") return "—";
  const id = String(value);
  if (kind === "instrument" && id.includes(":")) {
    const base = term("instrument", instrumentKind(id));
    return base === instrumentKind(id) ? id : `${base} (${id.slice(id.indexOf(":") + 1)})`;
  }
  const key = `vocab.${kind}.${id}`;
  const label = t(key);
  return label === key || label === "" ? id : label;
}

/**
 * The label as an element with the identifier kept: the label, its `title` the identifier
 * (and `data-id`); just the identifier, as <code>, when there is no translation (an
 * instrument's free text as plain text).
 * @param {Kind} kind @param {unknown} value @returns {HTMLElement}
 */
export function termNode(kind, value) {
  const label = term(kind, value);
  if (value === null || value === undefined || value === "") return el("span", { textContent: label });
  const id = String(value);
  // An act's legal_basis.instrument is free text (ledger/instruments.py): not an id, it is
  // shown as the state wrote it, not as code.
  const plain = kind === "instrument" && label === id && !/^[a-z0-9_]+(:[A-Z]{2})?$/.test(id);
  const node = plain ? el("span", { textContent: id }) : label === id ? el("code", { textContent: id }) : el("span", { className: "term", textContent: label, title: id });
  node.dataset.id = id;
  return node;
}

/**
 * A form label's content: the translated label with the identifier beside it in <code>.
 * @param {Kind} kind @param {string} id @returns {(Node | string)[]}
 */
export function termLabel(kind, id) {
  const label = term(kind, id);
  return label === id ? [el("code", { textContent: id })] : [label, " ", el("code", { className: "ident", textContent: id })];
}

/**
 * An <option> whose text is the label and whose title is the identifier.
 * @param {Kind} kind @param {string} id @returns {HTMLOptionElement}
 */
export function termOption(kind, id) {
  const option = new Option(term(kind, id), id);
  option.title = id;
  return option;
}
