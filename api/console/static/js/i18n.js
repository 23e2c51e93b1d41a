// Translations: every string the console shows comes from /console/i18n/<lang>.json. The
// chosen language is kept for the open tab only (sessionStorage) and sets the document's
// lang and dir attributes, so a right-to-left language lays the page out right to left.

/** @typedef {"en" | "fr" | "es" | "zh" | "ar"} Lang */

/** @type {Record<Lang, {dir: "ltr" | "rtl", name: string}>} */
export const LANGUAGES = {
  en: { dir: "ltr", name: "English" },
  fr: { dir: "ltr", name: "Français" },
  es: { dir: "ltr", name: "Español" },
  zh: { dir: "ltr", name: "中文" },
  ar: { dir: "rtl", name: "العربية" },
};
/** @type {Lang} */
export const FALLBACK = "en";

/** @type {Record<string, string>} */
let strings = {};
/** @type {Record<string, string>} */
let fallback = {};

/** @param {string} tag @returns {tag is Lang} */
export function isLanguage(tag) {
  return Object.hasOwn(LANGUAGES, tag);
}

/**
 * @param {string | null | undefined} stored @param {readonly string[] | null | undefined} preferred
 * @returns {Lang}
 */
export function chooseLanguage(stored, preferred) {
  for (const tag of [stored, ...(preferred ?? [])]) {
    const base = String(tag ?? "").toLowerCase().split("-")[0] ?? "";
    if (isLanguage(base)) return base;
  }
  return FALLBACK;
}

/** @param {Lang} lang @returns {Promise<Record<string, string>>} */
async function load(lang) {
  const reply = await fetch(`/console/i18n/${lang}.json`);
  if (!reply.ok) throw new Error(`no translation file for ${lang}`);
  return reply.json();
}

/** @param {Lang} lang @param {Document} root */
export async function setLanguage(lang, root = document) {
  fallback = Object.keys(fallback).length ? fallback : await load(FALLBACK);
  strings = lang === FALLBACK ? fallback : await load(lang);
  root.documentElement.lang = lang;
  root.documentElement.dir = LANGUAGES[lang].dir;
  for (const el of root.querySelectorAll("[data-i18n]")) {
    if (el instanceof HTMLElement) el.textContent = t(el.dataset.i18n ?? "");
  }
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    if (el instanceof HTMLElement) el.setAttribute("aria-label", t(el.dataset.i18nLabel ?? ""));
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) el.placeholder = t(el.dataset.i18nPlaceholder ?? "");
  }
  root.title = t("app.title");
}

/**
 * The string for `key` with {name} placeholders filled; the key itself if none exists.
 * @param {string} key @param {Record<string, unknown>} params @returns {string}
 */
export function t(key, params = {}) {
  const text = (Object.hasOwn(strings, key) ? strings[key] : undefined)
    ?? (Object.hasOwn(fallback, key) ? fallback[key] : undefined) ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (Object.hasOwn(params, name) ? String(params[name]) : `{${name}}`));
}
