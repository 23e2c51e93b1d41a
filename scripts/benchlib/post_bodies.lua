-- wrk script: POST pre-signed bodies read from a file, one body per request.
--
-- Usage: wrk -t T -c C -d D -s post_bodies.lua URL -- BODIES_FILE T [batch]
--
-- The file holds one JSON body per line. Thread j of T (numbered in setup)
-- keeps only lines j+1, j+1+T, j+1+2T, ...: the threads' slices are
-- disjoint, so no body is sent twice while the slice lasts. A resent body
-- would be an idempotent no-op for the node and inflate the request rate, so
-- a thread that runs out wraps around and counts it in `wraps`; the harness
-- reports any wrap as exhausted load.
--
-- A 503 (mempool full) is answered as a well-behaved client would: the
-- connection (the harness runs one per thread, so this state is per
-- connection) waits the Retry-After it was given and resends the same body
-- (a refused batch was admitted as a whole or not at all). Without that the
-- load would be mostly refused requests, and the nodes would spend their CPU
-- reading bodies only to refuse them.
--
-- done() prints one line "BENCHJSON {...}" for the harness to parse.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   batch = args[3] == "batch"
   bodies = {}
   local n = 0
   for line in io.lines(path) do
      if n % nthreads == id and #line > 0 then
         bodies[#bodies + 1] = line
      end
      n = n + 1
   end
   if #bodies == 0 then
      error("no bodies for thread " .. id .. " in " .. path)
   end
   nexti, wraps, sent = 1, 0, 0
   last, resend, wait_ms = nil, false, 0
   ok2xx, overloaded, other, item_errors, item_overloaded = 0, 0, 0, 0, 0
   headers = { ["Content-Type"] = "application/json" }
end

function request()
   if resend then
      resend = false
      return wrk.format("POST", nil, headers, last)
   end
   local body = bodies[nexti]
   nexti = nexti + 1
   sent = sent + 1
   if nexti > #bodies then
      nexti, wraps = 1, wraps + 1
   end
   last = body
   return wrk.format("POST", nil, headers, body)
end

function delay()
   -- wrk asks before each request how long to wait (ms).
   local ms = wait_ms
   wait_ms = 0
   return ms
end

function response(status, hdrs, body)
   if status >= 200 and status < 300 then
      ok2xx = ok2xx + 1
      if batch then
         -- per-item refusals (e.g. mempool_full) come back inside a 200
         local _, count = string.gsub(body, '"error"', "")
         item_errors = item_errors + count
         local _, full = string.gsub(body, '"mempool_full"', "")
         item_overloaded = item_overloaded + full
      end
   elseif status == 503 then
      overloaded = overloaded + 1
      resend = true
      wait_ms = 1000 * (tonumber(hdrs["Retry-After"] or hdrs["retry-after"] or "1") or 1)
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local t = { sent = 0, wraps = 0, ok2xx = 0, overloaded = 0, other = 0, item_errors = 0,
               item_overloaded = 0 }
   for _, thread in ipairs(threads) do
      for key, _ in pairs(t) do
         t[key] = t[key] + (thread:get(key) or 0)
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"sent":%d,"wraps":%d,' ..
      '"ok2xx":%d,"overloaded":%d,"other_status":%d,"item_errors":%d,' ..
      '"item_overloaded":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_ms":{"p50":%.3f,"p99":%.3f,"max":%.3f}}\n',
      summary.requests, summary.duration, summary.bytes, t.sent, t.wraps,
      t.ok2xx, t.overloaded, t.other, t.item_errors, t.item_overloaded,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
