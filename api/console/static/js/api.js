// The console's one door to the node's API: same origin, the tab's bearer token on every
// call. The token lives in sessionStorage only (this tab, gone when it closes): never in
// localStorage, a cookie or a URL.

/** @typedef {import("../../types/api").ApiPath} ApiPath */
/** @typedef {import("../../types/api").ApiStreamPath} ApiStreamPath */
/** @typedef {{event: string, id: string | null, data: unknown}} StreamEvent */
/** @typedef {{stopped: boolean, abort: AbortController | null, lastId: string | null}} StreamControl */
/** @typedef {(state: "open" | "error", status?: number) => void} OnState */

const TOKEN_KEY = "comity.token";
const MAX_SSE_BUFFER = 1024 * 1024; // one event is far smaller; a stream that is not SSE stops

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {unknown} secret @returns {boolean} */
export function setToken(secret) {
  const clean = String(secret ?? "").trim();
  if (!/^[\x21-\x7e]{1,512}$/.test(clean)) return false;
  sessionStorage.setItem(TOKEN_KEY, clean);
  return true;
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string | null} field @param {string | undefined} message */
  constructor(status, code, field, message) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** @param {Record<string, string>} extra @returns {Record<string, string>} */
function headers(extra = {}) {
  /** @type {Record<string, string>} */
  const out = { Accept: "application/json", ...extra };
  const token = getToken();
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}

/** @param {string} path @param {object} params @returns {string} */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * GET a JSON document; an error reply becomes an ApiError with the API's code and field.
 * The path, its query and the reply are typed from the API's OpenAPI document
 * (types/api.d.ts): a path it does not serve, or a parameter it does not take, is a tsc error.
 * @template {ApiPath} S
 * @param {S} path @param {import("../../types/api").Query<S>} [params]
 * @returns {Promise<import("../../types/api").Reply<S>>}
 */
export async function get(path, params) {
  const reply = await fetch(url(path, params ?? {}), { headers: headers(), credentials: "omit", cache: "no-store" });
  return /** @type {import("../../types/api").Reply<S>} */ (await reading(reply));
}

/**
 * POST a JSON document (a signed submission, docs/PROTOCOL.md §5); the reply read as get()
 * reads one, the API's refusal an ApiError with its code and field.
 * @param {string} path @param {unknown} document
 * @returns {Promise<Record<string, unknown>>}
 */
export async function post(path, document) {
  const init = { method: "POST", body: JSON.stringify(document), headers: headers({ "Content-Type": "application/json" }), credentials: /** @type {RequestCredentials} */ ("omit"), cache: /** @type {RequestCache} */ ("no-store") };
  return reading(await fetch(path, init));
}

/** @param {Response} reply @returns {Promise<Record<string, unknown>>} */
async function reading(reply) {
  /** @type {unknown} */
  let body = null;
  try {
    body = await reply.json();
  } catch {
    body = null;
  }
  if (!reply.ok) {
    const found = body && typeof body === "object" && "error" in body ? body.error : null;
    /** @type {{code?: unknown, field?: unknown, message?: unknown}} */
    const error = found && typeof found === "object" ? found : {};
    const field = typeof error.field === "string" ? error.field : null;
    const message = typeof error.message === "string" ? error.message : undefined;
    throw new ApiError(reply.status, String(error.code ?? `http_${reply.status}`), field, message);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new ApiError(reply.status, "bad_reply", null, "not a JSON object");
  return /** @type {Record<string, unknown>} */ (body);
}

/** Server-sent events read with fetch(), so the Authorization header goes too (EventSource
 * cannot send one). Calls onEvent({event, id, data}) per event; returns a stop function.
 * Reconnects after a drop with Last-Event-ID, waiting a little longer each time.
 * @template {ApiStreamPath} S
 * @param {S} path @param {import("../../types/api").StreamQuery<S>} params
 * @param {(event: StreamEvent) => void} onEvent @param {OnState} onState
 * @returns {() => void}
 */
export function stream(path, params, onEvent, onState = () => {}) {
  /** @type {StreamControl} */
  const control = { stopped: false, abort: null, lastId: null };
  const run = async () => {
    let wait = 1000;
    while (!control.stopped) {
      const abort = new AbortController();
      control.abort = abort;
      try {
        /** @type {Record<string, string>} */
        const extra = { Accept: "text/event-stream" };
        if (control.lastId) extra["Last-Event-ID"] = control.lastId;
        const reply = await fetch(url(path, params), { headers: headers(extra), signal: abort.signal, credentials: "omit", cache: "no-store" });
        if (!reply.ok || !reply.body) {
          onState("error", reply.status);
          if (reply.status === 401 || reply.status === 403) return;
        } else {
          onState("open");
          wait = 1000;
          await pump(reply.body, control, onEvent);
        }
      } catch (error) {
        if (control.stopped) return;
        onState("error", 0);
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 30_000);
    }
  };
  run();
  return () => {
    control.stopped = true;
    control.abort?.abort();
  };
}

/**
 * @param {ReadableStream<Uint8Array>} body @param {StreamControl} control
 * @param {(event: StreamEvent) => void} onEvent
 */
async function pump(body, control, onEvent) {
  // TypeScript's DOM library types TextDecoderStream's writable side as BufferSource, which
  // a stream of Uint8Array is: the cast only widens the chunk type.
  const reader = /** @type {ReadableStream<BufferSource>} */ (body).pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!control.stopped) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    if (buffer.length > MAX_SSE_BUFFER) throw new Error("event too large");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      /** @type {StreamEvent} */
      const event = { event: "message", id: null, data: "" };
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const at = line.indexOf(":");
        const name = at < 0 ? line : line.slice(0, at);
        const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
        if (name === "event") event.event = value;
        else if (name === "id") event.id = value;
        else if (name === "data") data.push(value);
      }
      if (event.id) control.lastId = event.id;
      if (!data.length) continue;
      try {
        event.data = JSON.parse(data.join("\n"));
      } catch {
        continue;
      }
      onEvent(event);
    }
  }
}
