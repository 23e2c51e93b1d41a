// Forms from the act catalogue's JSON Schemas (GET /v1/schemas), and the checks a browser
// can make before signing (issue 21).
//
// `validate(schema, value)` is pure: it walks the JSON Schema subset the catalogue uses
// (type, const, enum, pattern, min/maxLength, minimum/maximum, min/maxItems,
// min/maxProperties, patternProperties, additionalProperties: false, required, $ref into
// $defs, anyOf) and returns every problem as {field, rule, params}, `field` named as the
// API names it (`record.custodian.name`, `record.evidence[0].sha256`). The node checks
// everything again, and its 422 `code` and `field` are shown on the field they name.
//
// `buildForm` renders one control per field: selects for enums, check boxes for arrays
// of enums, one line per item for arrays of strings, fieldsets for objects and for each
// item of an array of objects (add, remove), a JSON text box for the rare shapes a form
// cannot draw (maps keyed by state code). Every control has a label, a hint naming its
// rules and an error line, tied by aria-describedby; an invalid one gets aria-invalid.

import { t } from "./i18n.js";
import { sha256Hex } from "./sha256.js";

/** @typedef {Record<string, any>} Schema */
/** @typedef {{field: string, rule: string, params: Record<string, any>}} Problem */

export const FILE_BYTES_MAX = 512 * 1024 * 1024; // WebCrypto digests a file whole
const HEX64 = "^[0-9a-f]{64}$";

/** The catalogue's `$defs` lookup: `#/$defs/Name` → the schema. @param {Schema} root */
const resolver = (root) => (/** @type {Schema} */ node) => {
  let out = node;
  for (let hops = 0; out && typeof out.$ref === "string" && hops < 16; hops++) {
    const name = out.$ref.replace(/^#\/\$defs\//, "");
    out = root.$defs?.[name] ?? {};
  }
  return out ?? {};
};

/**
 * A schema's value may be null (anyOf with {type: "null"}): the non-null form, and whether.
 * @param {Schema} node @param {(s: Schema) => Schema} resolve
 * @returns {{schema: Schema, nullable: boolean}}
 */
export function unwrap(node, resolve) {
  const resolved = resolve(node);
  if (Array.isArray(resolved.anyOf)) {
    const options = resolved.anyOf.filter((/** @type {Schema} */ s) => s.type !== "null");
    const nullable = options.length < resolved.anyOf.length;
    if (options.length === 1) return { schema: { ...resolve(options[0]), title: resolved.title ?? options[0].title }, nullable };
  }
  return { schema: resolved, nullable: false };
}

/**
 * Every problem with `value` against `schema` (the type's schema from GET /v1/schemas).
 * @param {Schema} root @param {unknown} value @param {string} [field]
 * @returns {Problem[]}
 */
export function validate(root, value, field = "record") {
  const resolve = resolver(root);
  /** @type {Problem[]} */
  const out = [];
  /** @param {Schema} node @param {unknown} v @param {string} f @param {number} depth @param {Problem[]} sink */
  const walk = (node, v, f, depth, sink) => {
    const add = (/** @type {string} */ at, /** @type {string} */ rule, params = {}) => {
      sink.push({ field: at, rule, params });
    };
    if (depth > 32) return add(f, "too_deep");
    const s = resolve(node);
    if (Array.isArray(s.anyOf)) {
      const options = s.anyOf.map(resolve);
      const fits = options.some((/** @type {Schema} */ o) => {
        /** @type {Problem[]} */
        const trial = [];
        walk(o, v, f, depth + 1, trial);
        return o.type === "null" ? v === null : trial.length === 0;
      });
      if (fits) return;
      const real = options.filter((/** @type {Schema} */ o) => o.type !== "null");
      if (real.length === 1) return walk(real[0] ?? {}, v, f, depth + 1, sink);
      return add(f, "any_of");
    }
    if ("const" in s && v !== s.const) return add(f, "const", { value: JSON.stringify(s.const) });
    if (Array.isArray(s.enum) && !s.enum.includes(v)) return add(f, "enum", { values: s.enum.join(", ") });
    switch (s.type) {
      case "string":
        if (typeof v !== "string") return add(f, "type_string");
        if (s.minLength !== undefined && [...v].length < s.minLength) add(f, "min_length", { n: s.minLength });
        if (s.maxLength !== undefined && [...v].length > s.maxLength) add(f, "max_length", { n: s.maxLength });
        if (s.pattern && !new RegExp(s.pattern, "u").test(v)) add(f, "pattern", { pattern: s.pattern });
        return;
      case "integer":
        if (typeof v !== "number" || !Number.isSafeInteger(v)) return add(f, "type_integer");
        if (s.minimum !== undefined && v < s.minimum) add(f, "minimum", { n: s.minimum });
        if (s.maximum !== undefined && v > s.maximum) add(f, "maximum", { n: s.maximum });
        return;
      case "boolean":
        if (typeof v !== "boolean") add(f, "type_boolean");
        return;
      case "null":
        if (v !== null) add(f, "type_null");
        return;
      case "array": {
        if (!Array.isArray(v)) return add(f, "type_array");
        if (s.minItems !== undefined && v.length < s.minItems) add(f, "min_items", { n: s.minItems });
        if (s.maxItems !== undefined && v.length > s.maxItems) add(f, "max_items", { n: s.maxItems });
        if (s.items) v.forEach((item, i) => walk(s.items, item, `${f}[${i}]`, depth + 1, sink));
        return;
      }
      case "object": {
        if (!v || typeof v !== "object" || Array.isArray(v)) return add(f, "type_object");
        const obj = /** @type {Record<string, unknown>} */ (v);
        for (const name of s.required ?? []) if (!(name in obj) || obj[name] === undefined) add(`${f}.${name}`, "required");
        const size = Object.keys(obj).length;
        if (s.minProperties !== undefined && size < s.minProperties) add(f, "min_items", { n: s.minProperties });
        if (s.maxProperties !== undefined && size > s.maxProperties) add(f, "max_items", { n: s.maxProperties });
        for (const [name, item] of Object.entries(obj)) {
          if (item === undefined) continue;
          if (s.properties && Object.hasOwn(s.properties, name)) walk(s.properties[name], item, `${f}.${name}`, depth + 1, sink);
          else {
            const pattern = Object.entries(s.patternProperties ?? {}).find(([p]) => new RegExp(p, "u").test(name));
            if (pattern) walk(pattern[1], item, `${f}.${name}`, depth + 1, sink);
            else if (s.additionalProperties === false) add(`${f}.${name}`, "unknown_field");
          }
        }
        return;
      }
      default:
    }
  };
  walk(root, value, field, 0, out);
  return out;
}

/** The sentence for a problem, naming the field and the rule. @param {Problem} p */
export function message(p) {
  return t(`newact.rule.${p.rule}`, { field: p.field, ...p.params });
}

// --- the form -----------------------------------------------------------------------------

/**
 * @typedef {object} FieldNode
 * @property {string} path
 * @property {() => unknown} read   the value, or undefined when left empty
 * @property {(v: unknown) => void} [write]
 * @property {HTMLElement} [control]
 * @property {HTMLElement} [error]
 * @property {Record<string, FieldNode>} [children]
 */

/**
 * @param {string} tag @param {Record<string, any>} [props] @param {...(Node | string | null)} children
 * @returns {HTMLElement}
 */
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

/** @param {string} path */
export const controlId = (path) => `nf-${path.replace(/^record\.?/, "").replace(/[^A-Za-z0-9_]+/g, "-")}`;

/** A pattern reads left to right in Arabic too (U+2066 … U+2069 isolate it). @param {string} text */
const ltr = (text) => `\u2066${text}\u2069`;

/** The rules a field's hint lists. @param {Schema} s @param {boolean} required */
function hint(s, required) {
  const parts = [t(required ? "newact.required" : "newact.optional")];
  if (s.minLength !== undefined || s.maxLength !== undefined) parts.push(t("newact.hint_length", { min: s.minLength ?? 0, max: s.maxLength ?? "∞" }));
  if (s.pattern) parts.push(t("newact.hint_pattern", { pattern: ltr(s.pattern) }));
  if (s.minimum !== undefined || s.maximum !== undefined) parts.push(t("newact.hint_range", { min: s.minimum ?? "−∞", max: s.maximum ?? "∞" }));
  if (s.minItems !== undefined || s.maxItems !== undefined) parts.push(t("newact.hint_items", { min: s.minItems ?? 0, max: s.maxItems ?? "∞" }));
  return parts.join(" · ");
}

/**
 * The label, the control, its hint and its error line, tied together for assistive tech.
 * @param {string} path @param {string} title @param {HTMLElement} control @param {string} hintText
 */
function labelled(path, title, control, hintText) {
  const id = controlId(path);
  control.id = id;
  const hintEl = el("small", { id: `${id}-hint`, className: "hint", textContent: hintText });
  const error = el("span", { id: `${id}-error`, className: "field-error", role: "alert" });
  control.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
  control.dataset.field = path;
  const wrap = el("div", { className: "field" }, el("label", { htmlFor: id, textContent: title }), control, hintEl, error);
  return { wrap, error };
}

/** @param {string} name @param {Schema} s */
const titleOf = (name, s) => String(s.title ?? name.replace(/_/g, " "));

/**
 * @typedef {object} FormContext
 * @property {(s: Schema) => Schema} resolve
 * @property {Map<string, FieldNode>} fields   every control by its API field name
 * @property {Problem[]} readProblems           what reading found (a number that is not one, bad JSON)
 */

/**
 * One field: its node, and the element to show.
 * @param {FormContext} ctx @param {string} path @param {string} name @param {Schema} raw @param {boolean} required
 * @returns {{node: FieldNode, view: HTMLElement}}
 */
function field(ctx, path, name, raw, required) {
  const { schema: s, nullable } = unwrap(raw, ctx.resolve);
  const optional = !required || nullable;
  const title = titleOf(name, s);
  const register = (/** @type {FieldNode} */ node) => {
    ctx.fields.set(path, node);
    return node;
  };
  if (Array.isArray(s.enum) && s.type !== "array") {
    const select = /** @type {HTMLSelectElement} */ (el("select"));
    if (optional || s.default === undefined) select.append(new Option(s.default !== undefined ? t("newact.default", { value: s.default }) : "—", ""));
    for (const v of s.enum) select.append(new Option(String(v), String(v)));
    const { wrap, error } = labelled(path, title, select, hint(s, !optional));
    return { node: register({ path, control: select, error, read: () => (select.value === "" ? undefined : select.value), write: (v) => (select.value = String(v ?? "")) }), view: wrap };
  }
  if (s.type === "boolean") {
    const select = /** @type {HTMLSelectElement} */ (el("select"));
    select.append(new Option("—", ""), new Option(t("newact.yes"), "true"), new Option(t("newact.no"), "false"));
    const { wrap, error } = labelled(path, title, select, hint(s, !optional));
    return { node: register({ path, control: select, error, read: () => (select.value === "" ? undefined : select.value === "true"), write: (v) => (select.value = v === undefined ? "" : String(v)) }), view: wrap };
  }
  if (s.type === "integer") {
    const input = /** @type {HTMLInputElement} */ (el("input", { type: "number", step: "1", inputMode: "numeric" }));
    if (s.minimum !== undefined) input.min = String(s.minimum);
    if (s.maximum !== undefined) input.max = String(s.maximum);
    const { wrap, error } = labelled(path, title, input, hint(s, !optional));
    const read = () => {
      const text = input.value.trim();
      if (!text) return undefined;
      if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
        ctx.readProblems.push({ field: path, rule: "type_integer", params: {} });
        return undefined;
      }
      return Number(text);
    };
    return { node: register({ path, control: input, error, read, write: (v) => (input.value = v === undefined ? "" : String(v)) }), view: wrap };
  }
  if (s.type === "string") {
    const long = (s.maxLength ?? 0) > 500;
    const input = /** @type {HTMLInputElement} */ (el(long ? "textarea" : "input", long ? { rows: 3 } : { type: "text", autocomplete: "off", spellcheck: false }));
    if (s.maxLength !== undefined) input.maxLength = s.maxLength;
    const { wrap, error } = labelled(path, title, input, hint(s, !optional));
    const node = register({ path, control: input, error, read: () => (input.value === "" ? undefined : input.value), write: (v) => (input.value = v === undefined ? "" : String(v)) });
    if (s.pattern === HEX64 && /(^|_)sha256$/.test(name)) wrap.append(hashPicker(path, input));
    return { node, view: wrap };
  }
  if (s.type === "array") return arrayField(ctx, path, name, s, optional, register);
  if (s.type === "object" && s.properties) return objectField(ctx, path, name, s, optional, register);
  return jsonField(ctx, path, title, s, optional, register);
}

/** A file hashed here into a SHA-256 field; the file is read locally and never sent.
 * @param {string} path @param {HTMLInputElement} input */
function hashPicker(path, input) {
  const id = `${controlId(path)}-file`;
  const file = /** @type {HTMLInputElement} */ (el("input", { type: "file", id }));
  const status = el("span", { className: "detail", role: "status", id: `${id}-status` });
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    if (chosen.size > FILE_BYTES_MAX) {
      status.textContent = t("newact.file_too_large", { name: chosen.name });
      return;
    }
    status.textContent = t("newact.hashing", { name: chosen.name });
    input.value = await sha256Hex(new Uint8Array(await chosen.arrayBuffer()));
    input.dispatchEvent(new Event("input", { bubbles: true }));
    const siblings = input.closest("fieldset");
    const fill = (/** @type {string} */ suffix, /** @type {string} */ value) => {
      const other = /** @type {HTMLInputElement | null} */ (siblings?.querySelector(`#${CSS.escape(controlId(path).replace(/sha256$/, suffix))}`) ?? null);
      if (other && !other.value) other.value = value;
    };
    fill("size", String(chosen.size));
    fill("name", chosen.name.slice(0, 200));
    status.textContent = t("newact.hashed", { name: chosen.name });
  });
  return el("div", { className: "hash-file" }, el("label", { htmlFor: id, textContent: t("newact.hash_file") }), file, status);
}

/**
 * @param {FormContext} ctx @param {string} path @param {string} name @param {Schema} s
 * @param {boolean} optional @param {(n: FieldNode) => FieldNode} register
 */
function arrayField(ctx, path, name, s, optional, register) {
  const items = unwrap(s.items ?? {}, ctx.resolve).schema;
  const title = titleOf(name, s);
  if (Array.isArray(items.enum)) {
    const boxes = items.enum.map((/** @type {string} */ v) => /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", value: v, id: `${controlId(path)}-${v}` })));
    const id = controlId(path);
    const group = el("fieldset", { id, className: "choices" }, el("legend", { textContent: title }), ...boxes.map((/** @type {HTMLInputElement} */ b) => el("label", { htmlFor: b.id }, b, ` ${b.value}`)));
    const hintEl = el("small", { id: `${id}-hint`, className: "hint", textContent: hint(s, !optional) });
    const error = el("span", { id: `${id}-error`, className: "field-error", role: "alert" });
    group.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
    group.dataset.field = path;
    group.append(hintEl, error);
    const read = () => {
      const chosen = boxes.filter((/** @type {HTMLInputElement} */ b) => b.checked).map((/** @type {HTMLInputElement} */ b) => b.value);
      return chosen.length ? chosen : undefined;
    };
    const write = (/** @type {unknown} */ v) => boxes.forEach((/** @type {HTMLInputElement} */ b) => (b.checked = Array.isArray(v) && v.includes(b.value)));
    return { node: register({ path, control: group, error, read, write }), view: group };
  }
  if (items.type === "object") return objectList(ctx, path, title, s, items, optional, register);
  // Strings (or integers): one per line.
  const area = /** @type {HTMLTextAreaElement} */ (el("textarea", { rows: 2, spellcheck: false }));
  const { wrap, error } = labelled(path, title, area, `${hint(s, !optional)} · ${t("newact.one_per_line")}${items.pattern ? ` · ${t("newact.hint_pattern", { pattern: ltr(items.pattern) })}` : ""}`);
  const read = () => {
    const lines = area.value.split("\n").map((l) => l.trim()).filter(Boolean);
    if (!lines.length) return undefined;
    if (items.type !== "integer") return lines;
    return lines.map((l) => (/^-?\d+$/.test(l) ? Number(l) : l));
  };
  const write = (/** @type {unknown} */ v) => (area.value = Array.isArray(v) ? v.join("\n") : "");
  return { node: register({ path, control: area, error, read, write }), view: wrap };
}

/**
 * An array of objects: a fieldset per item, with add and remove.
 * @param {FormContext} ctx @param {string} path @param {string} title @param {Schema} s @param {Schema} items
 * @param {boolean} optional @param {(n: FieldNode) => FieldNode} register
 */
function objectList(ctx, path, title, s, items, optional, register) {
  const id = controlId(path);
  const list = el("div", { className: "items" });
  /** @type {{node: FieldNode, view: HTMLElement}[]} */
  let rows = [];
  const add = el("button", { type: "button", id: `${id}-add`, textContent: t("newact.add", { what: title }) });
  const error = el("span", { id: `${id}-error`, className: "field-error", role: "alert" });
  const hintEl = el("small", { id: `${id}-hint`, className: "hint", textContent: hint(s, !optional) });
  const group = el("fieldset", { id, className: "list" }, el("legend", { textContent: title }), hintEl, list, add, error);
  group.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
  group.dataset.field = path;
  const renumber = () => {
    for (const key of [...ctx.fields.keys()]) if (key.startsWith(`${path}[`)) ctx.fields.delete(key);
    const values = rows.map((r) => r.node.read());
    list.replaceChildren();
    const old = rows;
    rows = [];
    old.forEach((_, i) => addRow(values[i]));
  };
  const addRow = (/** @type {unknown} */ value) => {
    const i = rows.length;
    const row = objectField(ctx, `${path}[${i}]`, `${title} ${i + 1}`, items, false, (n) => n);
    const remove = el("button", { type: "button", className: "remove", id: `${controlId(`${path}[${i}]`)}-remove`, textContent: t("newact.remove", { what: `${title} ${i + 1}` }) });
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      renumber();
      add.focus(); // the removed button took the focus with it
    });
    row.view.append(remove);
    if (value !== undefined) row.node.write?.(value);
    rows.push(row);
    list.append(row.view);
  };
  add.addEventListener("click", () => addRow(undefined));
  const read = () => {
    const values = rows.map((r) => r.node.read() ?? {});
    return values.length ? values : undefined;
  };
  const write = (/** @type {unknown} */ v) => {
    rows = [];
    list.replaceChildren();
    for (const key of [...ctx.fields.keys()]) if (key.startsWith(`${path}[`)) ctx.fields.delete(key);
    if (Array.isArray(v)) v.forEach((item) => addRow(item));
  };
  return { node: register({ path, control: group, error, read, write }), view: group };
}

/**
 * A nested object: a fieldset of its fields; an optional one is left out when all are empty.
 * @param {FormContext} ctx @param {string} path @param {string} name @param {Schema} s
 * @param {boolean} optional @param {(n: FieldNode) => FieldNode} register
 */
function objectField(ctx, path, name, s, optional, register) {
  const id = controlId(path);
  const required = new Set(s.required ?? []);
  /** @type {Record<string, FieldNode>} */
  const children = {};
  const error = el("span", { id: `${id}-error`, className: "field-error", role: "alert" });
  const group = el("fieldset", { id, className: "object" }, el("legend", { textContent: titleOf(name, s) }));
  group.dataset.field = path;
  for (const [key, sub] of Object.entries(s.properties ?? {})) {
    const made = field(ctx, `${path}.${key}`, key, sub, required.has(key));
    children[key] = made.node;
    group.append(made.view);
  }
  group.append(error);
  const read = () => {
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const [key, node] of Object.entries(children)) {
      const v = node.read();
      if (v !== undefined) out[key] = v;
    }
    return optional && !Object.keys(out).length ? undefined : out;
  };
  const write = (/** @type {unknown} */ v) => {
    const obj = v && typeof v === "object" ? /** @type {Record<string, unknown>} */ (v) : {};
    for (const [key, node] of Object.entries(children)) node.write?.(obj[key]);
  };
  return { node: register({ path, control: group, error, read, write, children }), view: group };
}

/**
 * A shape a form cannot draw (a map keyed by state code): JSON, checked like the rest.
 * @param {FormContext} ctx @param {string} path @param {string} title @param {Schema} s @param {boolean} optional
 * @param {(n: FieldNode) => FieldNode} register
 */
function jsonField(ctx, path, title, s, optional, register) {
  const area = /** @type {HTMLTextAreaElement} */ (el("textarea", { rows: 3, spellcheck: false }));
  const { wrap, error } = labelled(path, title, area, `${hint(s, !optional)} · ${t("newact.json")}`);
  const read = () => {
    if (!area.value.trim()) return undefined;
    try {
      return JSON.parse(area.value);
    } catch {
      ctx.readProblems.push({ field: path, rule: "not_json", params: {} });
      return undefined;
    }
  };
  const write = (/** @type {unknown} */ v) => (area.value = v === undefined ? "" : JSON.stringify(v, null, 1));
  return { node: register({ path, control: area, error, read, write }), view: wrap };
}

/**
 * The form of one act type, without the fields the console fills itself (`skip`).
 * @param {Schema} root the type's schema @param {Set<string>} skip top-level fields not drawn
 * @returns {{view: HTMLElement, read: () => {value: Record<string, unknown>, problems: Problem[]}, fields: Map<string, FieldNode>}}
 */
export function buildForm(root, skip) {
  /** @type {FormContext} */
  const ctx = { resolve: resolver(root), fields: new Map(), readProblems: [] };
  const required = new Set(root.required ?? []);
  const view = el("div", { className: "act-fields" });
  /** @type {Record<string, FieldNode>} */
  const top = {};
  for (const [name, sub] of Object.entries(root.properties ?? {})) {
    if (skip.has(name)) continue;
    const made = field(ctx, `record.${name}`, name, sub, required.has(name));
    top[name] = made.node;
    view.append(made.view);
  }
  const read = () => {
    ctx.readProblems = [];
    /** @type {Record<string, unknown>} */
    const value = {};
    for (const [name, node] of Object.entries(top)) {
      const v = node.read();
      if (v !== undefined) value[name] = v;
    }
    return { value, problems: [...ctx.readProblems] };
  };
  return { view, read, fields: ctx.fields };
}

/** `record.a.b[2]` → `record.a.b`; the top gives "". @param {string} path */
export function parentField(path) {
  const match = /^(.*)(\.[^.[\]]+|\[\d+\])$/.exec(path);
  return match?.[1] ?? "";
}

/**
 * Show problems on their fields (or the nearest drawn parent); clear the others.
 * @param {Map<string, FieldNode>} fields @param {Problem[]} problems
 * @returns {Problem[]} the problems no drawn field could show
 */
export function showProblems(fields, problems) {
  for (const node of fields.values()) {
    if (node.error) node.error.textContent = "";
    node.control?.removeAttribute("aria-invalid");
  }
  /** @type {Problem[]} */
  const orphans = [];
  for (const p of problems) {
    let path = String(p.field ?? "").replace(/^private\.act\b/, "record");
    while (path && !fields.has(path)) path = parentField(path);
    const node = path ? fields.get(path) : undefined;
    if (!node?.error) {
      orphans.push(p);
      continue;
    }
    node.error.textContent = [node.error.textContent, message(p)].filter(Boolean).join(" ");
    node.control?.setAttribute("aria-invalid", "true");
  }
  return orphans;
}
