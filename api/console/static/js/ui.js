// Small DOM helpers the views share (typed, for tsc): an element built with its properties
// set as properties (so text goes in as textContent, never as markup), a time in the
// page's locale with UTC beside it, and the message an API failure shows.

import { ApiError } from "./api.js";
import { t } from "./i18n.js";

/**
 * An element, its properties set as properties (textContent, never innerHTML).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | null | undefined)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(.../** @type {(Node | string)[]} */ (children.filter((c) => c !== null && c !== undefined)));
  return node;
}

/** A value as text, "—" when there is none. @param {unknown} value */
export function text(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

/**
 * A time in the page's locale, with the UTC time beside it.
 * @param {unknown} iso
 */
export function formatTime(iso) {
  if (typeof iso !== "string") return text(iso);
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return text(iso);
  const local = new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: "medium", timeStyle: "short" }).format(when);
  // The UTC time is isolated left-to-right (U+2066 … U+2069), so it reads alike in Arabic.
  return `${local} (\u2066${when.toISOString().slice(0, 16).replace("T", " ")} UTC\u2069)`;
}

/**
 * The message an API failure shows: 401 and 403 say what to do about the token.
 * @param {Element} target
 * @param {unknown} error
 */
export function failure(target, error) {
  const status = error instanceof ApiError ? error.status : 0;
  const key = status === 401 ? "access.unauthorized" : status === 403 ? "access.forbidden" : "access.error";
  const code = error instanceof ApiError ? error.code : "network";
  target.replaceChildren(el("p", { className: "fail", role: "alert", textContent: t(key, { code }) }));
}
