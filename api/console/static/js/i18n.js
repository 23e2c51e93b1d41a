// Translations: every string the console shows comes from /console/i18n/<lang>.json. The
// chosen language is kept for the open tab only (sessionStorage) and sets the document's
// lang and dir attributes, so a right-to-left language lays the page out right to left.

export const LANGUAGES = {
  en: { dir: "ltr", name: "English" },
  fr: { dir: "ltr", name: "Français" },
  es: { dir: "ltr", name: "Español" },
  zh: { dir: "ltr", name: "中文" },
  ar: { dir: "rtl", name: "العربية" },
};
export const FALLBACK = "en";

let strings = {};
let fallback = {};

export function chooseLanguage(stored, preferred) {
  for (const tag of [stored, ...(preferred ?? [])]) {
    const base = String(tag ?? "").toLowerCase().split("-")[0];
    if (Object.hasOwn(LANGUAGES, base)) return base;
  }
  return FALLBACK;
}

async function load(lang) {
  const reply = await fetch(`/console/i18n/${lang}.json`);
  if (!reply.ok) throw new Error(`no translation file for ${lang}`);
  return reply.json();
}

export async function setLanguage(lang, root = document) {
  fallback = Object.keys(fallback).length ? fallback : await load(FALLBACK);
  strings = lang === FALLBACK ? fallback : await load(lang);
  root.documentElement.lang = lang;
  root.documentElement.dir = LANGUAGES[lang].dir;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  root.title = t("app.title");
}

/** The string for `key` with {name} placeholders filled; the key itself if none exists. */
export function t(key, params = {}) {
  const text = strings[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (Object.hasOwn(params, name) ? String(params[name]) : `{${name}}`));
}
