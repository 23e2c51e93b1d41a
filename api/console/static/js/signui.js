// The signing key of this tab: loaded from a key file or unlocked from the browser's store,
// held in memory for this tab only (a reload forgets it), shared by the New act view and
// the inbox's answer dialog. The file is read with the File API; nothing is sent.

import { t } from "./i18n.js";
import { KeyFileError, PEM_BYTES_MAX, loadSigner, parsePem } from "./keys.js";
import { KeyStoreError, deleteKey, listKeys, saveKey, unlockKey } from "./keystore.js";

/** @typedef {import("./keys.js").Signer} Signer */

/** @type {Signer | null} */
let current = null;
/** @type {Set<() => void>} */
const listeners = new Set();

/** The tab's signer, or null. */
export function signer() {
  return current;
}

/** @param {Signer | null} next */
function setSigner(next) {
  current?.forget();
  current = next;
  for (const listener of listeners) listener();
}

/**
 * @param {string} tag @param {Record<string, any>} [props] @param {...(Node | string | null)} children
 * @returns {HTMLElement}
 */
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

/** @param {unknown} error */
const reason = (error) => {
  const code = error instanceof KeyFileError || error instanceof KeyStoreError ? error.code : "key_error";
  return t("sign.refused", { code, reason: t(`sign.reason.${code}`) });
};

/**
 * A labelled control. @param {string} id @param {string} key @param {HTMLElement} control
 */
const row = (id, key, control) => {
  control.id = id;
  return el("div", { className: "field" }, el("label", { htmlFor: id, textContent: t(key) }), control);
};

/**
 * The key panel: which key signs, how to load one, the store. `prefix` keeps ids unique
 * when the panel is drawn twice (the New act view and the answer dialog).
 * @param {string} prefix
 * @returns {{view: HTMLElement, stop: () => void}}
 */
export function keyPanel(prefix) {
  const status = el("p", { id: `${prefix}-key-status`, role: "status", className: "detail" });
  const problem = el("p", { id: `${prefix}-key-error`, role: "alert", className: "fail" });
  const file = /** @type {HTMLInputElement} */ (el("input", { type: "file", accept: ".key,.pem,application/x-pem-file" }));
  const keep = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox" }));
  const label = /** @type {HTMLInputElement} */ (el("input", { type: "text", maxLength: 100, autocomplete: "off" }));
  const pass = /** @type {HTMLInputElement} */ (el("input", { type: "password", autocomplete: "new-password" }));
  const stored = /** @type {HTMLSelectElement} */ (el("select"));
  const unlockPass = /** @type {HTMLInputElement} */ (el("input", { type: "password", autocomplete: "current-password" }));
  const unlock = el("button", { type: "button", id: `${prefix}-key-unlock`, textContent: t("sign.unlock") });
  const remove = el("button", { type: "button", id: `${prefix}-key-delete`, textContent: t("sign.delete") });
  const forget = el("button", { type: "button", id: `${prefix}-key-forget`, textContent: t("sign.forget") });
  const load = el("button", { type: "button", id: `${prefix}-key-load`, textContent: t("sign.load") });

  const show = () => {
    status.textContent = current ? t("sign.loaded", { key: current.publicHex, backend: current.backend }) : t("sign.none");
    forget.hidden = !current;
  };
  const refreshStore = async () => {
    try {
      const keys = await listKeys();
      stored.replaceChildren(...keys.map((k) => new Option(`${k.label} · ${k.publicHex.slice(0, 16)}…`, k.id)));
      storeBox.hidden = keys.length === 0;
    } catch {
      storeBox.hidden = true; // no IndexedDB (a private window may refuse it): file only
    }
  };
  /** @param {() => Promise<void>} action */
  const guarded = async (action) => {
    problem.textContent = "";
    try {
      await action();
    } catch (error) {
      problem.textContent = reason(error);
    }
  };
  load.addEventListener("click", () =>
    guarded(async () => {
      const chosen = file.files?.[0];
      if (!chosen) throw new KeyFileError("no_file", "no key file chosen");
      if (chosen.size > PEM_BYTES_MAX) throw new KeyFileError("not_pem", "larger than 16 KiB");
      const der = parsePem(await chosen.text());
      try {
        const copy = keep.checked ? der.slice() : null;
        const next = await loadSigner(der); // zeroes der
        if (copy) {
          try {
            await saveKey(copy, next.publicHex, label.value.trim(), pass.value);
          } finally {
            copy.fill(0);
          }
        }
        setSigner(next);
      } finally {
        der.fill(0);
        pass.value = "";
        file.value = "";
      }
      await refreshStore();
    }),
  );
  unlock.addEventListener("click", () =>
    guarded(async () => {
      const next = await unlockKey(stored.value, unlockPass.value);
      unlockPass.value = "";
      setSigner(next);
    }),
  );
  remove.addEventListener("click", () =>
    guarded(async () => {
      await deleteKey(stored.value);
      await refreshStore();
    }),
  );
  forget.addEventListener("click", () => setSigner(null));

  const keepBox = el("fieldset", { className: "keep" }, el("legend", { textContent: t("sign.keep_legend") }), el("label", { htmlFor: `${prefix}-key-keep` }, keep, ` ${t("sign.keep")}`), row(`${prefix}-key-label`, "sign.label", label), row(`${prefix}-key-pass`, "sign.passphrase", pass));
  keep.id = `${prefix}-key-keep`;
  const storeBox = el("fieldset", { className: "store", hidden: true }, el("legend", { textContent: t("sign.store_legend") }), row(`${prefix}-key-stored`, "sign.stored", stored), row(`${prefix}-key-unlock-pass`, "sign.passphrase", unlockPass), unlock, remove);
  const view = el(
    "section",
    { className: "keys", "aria-labelledby": `${prefix}-key-title` },
    el("h2", { id: `${prefix}-key-title`, textContent: t("sign.title") }),
    el("p", { className: "detail", textContent: t("sign.intro") }),
    status,
    row(`${prefix}-key-file`, "sign.file", file),
    keepBox,
    load,
    forget,
    storeBox,
    problem,
  );
  listeners.add(show);
  show();
  refreshStore();
  return { view, stop: () => listeners.delete(show) };
}
