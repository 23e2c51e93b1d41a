// The console's API client (api.js) under Node, with fetch and sessionStorage stubbed: the
// tab's token goes as Authorization and nowhere else, a refused reply keeps the API's code
// and field, and the text/event-stream reader takes only well-formed events, hostile
// streams included (run by tests/unit/test_console_js.py with the other modules' tests).

import assert from "node:assert/strict";
import { test } from "node:test";

const store = new Map();
globalThis.sessionStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
};
const calls = [];
let replies = [];
globalThis.fetch = async (url, init = {}) => {
  calls.push({ url, headers: { ...init.headers } });
  const next = replies.shift();
  if (!next) return new Promise(() => {}); // a stream that never answers again
  return next();
};
const { ApiError, forgetToken, get, getToken, setToken, stream, url } = await import("../../api/console/static/js/api.js");

function sse(chunks) {
  return () => {
    const body = new ReadableStream({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
}

test("a token is kept for the tab only if it is printable, and forgotten", () => {
  for (const bad of ["", "   ", "a b", "tok\nen", "x".repeat(513), "é"]) assert.equal(setToken(bad), false, bad);
  assert.equal(getToken(), null);
  assert.equal(setToken("  cmt_secret  "), true);
  assert.equal(getToken(), "cmt_secret");
  forgetToken();
  assert.equal(getToken(), null);
});

test("the token goes as Authorization, never in the URL; an error keeps code and field", async () => {
  setToken("cmt_secret");
  calls.length = 0;
  replies = [
    () => Response.json({ state: "TH" }),
    () => Response.json({ error: { code: "bad_cursor", field: "query.cursor", message: "no" } }, { status: 400 }),
    () => new Response("<html>", { status: 502 }),
    () => new Response("[1]", { status: 200 }),
  ];
  assert.deepEqual(await get("/v1/status"), { state: "TH" });
  await assert.rejects(get("/v1/sovereignty/notices", { cursor: "-1" }), (e) => e instanceof ApiError && e.status === 400 && e.code === "bad_cursor" && e.field === "query.cursor");
  await assert.rejects(get("/v1/stats"), (e) => e instanceof ApiError && e.status === 502 && e.code === "http_502");
  await assert.rejects(get("/v1/stats"), (e) => e instanceof ApiError && e.code === "bad_reply");
  assert.ok(calls.every((c) => c.headers.Authorization === "Bearer cmt_secret"));
  assert.ok(calls.every((c) => !c.url.includes("cmt_secret")));
  assert.equal(url("/v1/x", { a: "1 2", b: null, c: "" }), "/v1/x?a=1+2");
  forgetToken();
});

test("the event-stream reader takes well-formed events only", async () => {
  setToken("cmt_secret");
  calls.length = 0;
  replies = [
    sse([
      ": keep-alive\r\n\r\n",
      "event: record\r\nid: 5:0\r\ndata: {\"id\":\"a\",",
      "\"n\":1}\r\n\r\n",
      "event: block\nid: 6\ndata: not json\n\n",
      "event: record\nid: 7:1\ndata: {\"id\":\ndata: \"b\"}\n\n",
      "id: 8\n\n",
    ]),
  ];
  const seen = [];
  const states = [];
  const stop = stream("/v1/events", { territorial_state: "TH", foreign: "true" }, (e) => seen.push(e), (s) => states.push(s));
  await new Promise((resolve) => setTimeout(resolve, 1300)); // the stream ends, then one reconnect
  stop();
  assert.deepEqual(seen.map((e) => [e.event, e.id, e.data]), [["record", "5:0", { id: "a", n: 1 }], ["record", "7:1", { id: "b" }]]);
  assert.equal(states[0], "open");
  assert.equal(calls[0].url, "/v1/events?territorial_state=TH&foreign=true");
  assert.equal(calls[0].headers.Authorization, "Bearer cmt_secret");
  assert.equal(calls[0].headers.Accept, "text/event-stream");
  assert.equal(calls[1].headers["Last-Event-ID"], "8"); // the reconnect resumes after the last id
  forgetToken();
});

test("an event larger than the reader's limit stops the stream, and nothing is taken", async () => {
  calls.length = 0;
  replies = [sse(["data: {\"x\":\"", "y".repeat(1024 * 1024 + 10), "\"}\n\n"])];
  const seen = [];
  const states = [];
  const stop = stream("/v1/events", {}, (e) => seen.push(e), (s) => states.push(s));
  await new Promise((resolve) => setTimeout(resolve, 200));
  stop();
  assert.deepEqual(seen, []);
  assert.deepEqual(states, ["open", "error"]);
});

test("a 401 on the stream is reported and not retried", async () => {
  calls.length = 0;
  replies = [() => Response.json({ error: { code: "unauthorized" } }, { status: 401 })];
  const states = [];
  stream("/v1/events", {}, () => {}, (s, code) => states.push([s, code]));
  await new Promise((resolve) => setTimeout(resolve, 1300));
  assert.deepEqual(states, [["error", 401]]);
  assert.equal(calls.length, 1);
});
