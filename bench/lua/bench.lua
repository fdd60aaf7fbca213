-- wrk script for refapp's load benchmark (driven by bench/run.py; see bench/README.md).
--
--   wrk -t2 -c64 -d13s --timeout 30s --latency -s bench/lua/bench.lua URL -- \
--       KIND TAG WINDOW_SECONDS PROGRAM_SLUG CODES_FILE VISITORS_FILE CONNECTIONS_PER_THREAD
--
-- KIND is "click" (POST /api/v1/track/click), "go" (GET /go/PROGRAM/CODE, a redirect link: 302),
-- "event" (POST /api/v1/events, secret key taken from the REFAPP_BENCH_SECRET environment variable),
-- "static" (GET /livez: the server answering 204 before Django), "tracker" (GET of the tracker's
-- versioned URL, taken from REFAPP_BENCH_TRACKER_PATH, with a browser's Accept-Encoding) or
-- "tracker304" (the same with If-None-Match: REFAPP_BENCH_TRACKER_ETAG, a revalidation).
--
-- Every request carries unique ids (TAG, thread number, per-thread counter), so each accepted
-- click or event is exactly one new row. TAG: up to 40 of [A-Za-z0-9-], unique per run.
--
-- Drain: wrk stops at -d whatever is in flight, and the server still finishes those abandoned
-- requests, which would make "rows landed" exceed "responses seen". So a response that arrives
-- after WINDOW_SECONDS is its connection's last (delay() parks the connection), and a thread stops
-- as soon as its last in-flight request is answered. Give wrk's -d some seconds more for that.
-- The decision is taken at response time, not when delay() runs: with servers that close every
-- connection (gunicorn's sync workers) wrk reconnects at once, and a connection opened before the
-- deadline but parked would sit in the server's accept queue ahead of real requests, holding a
-- worker blocked on a request that never comes while real requests wait behind it.
-- When REFAPP_BENCH_DRAIN_FILE is set, each thread appends a line to that file once drained, so
-- the runner can end wrk early with SIGINT (wrk then reports as usual) instead of idling to -d.
--
-- done() prints one line "REFAPP_BENCH_REPORT {json}" with the status counts summed over threads,
-- requests sent and answered, the active window (common start to last response), wrk's latency
-- percentiles in microseconds, and per thread [sent, answered, owed, parked] for diagnosis.

local UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
-- Bound on ids read from each file. Each thread reads its files in init(), after the common start
-- of the window, so reading is time the window loses: a million visitor ids cost this 2-core
-- machine about a second per thread of a 10-15 s window (events/s: 333 against 455 with 100,000).
local MAX_LINES = 100000
local PARKED_MS = 3600 * 1000      -- "never" within any bounded run

-- A wall clock with sub-millisecond resolution: CLOCK_MONOTONIC through LuaJIT's FFI (Debian's wrk
-- is built on LuaJIT), else whole seconds from os.time().
local clock, clock_name
do
  local ok, ffi = pcall(require, "ffi")
  if ok and pcall(ffi.cdef, [[
      typedef struct { long tv_sec; long tv_nsec; } refapp_bench_timespec;
      int clock_gettime(int clk_id, refapp_bench_timespec *tp);
  ]]) then
    local ts = ffi.new("refapp_bench_timespec")
    clock = function()
      ffi.C.clock_gettime(1, ts)  -- 1 = CLOCK_MONOTONIC on Linux
      return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
    end
    clock_name = "monotonic"
  else
    clock = os.time
    clock_name = "os.time"
  end
end

local function read_lines(path)
  local out = {}
  if path == nil or path == "" or path == "-" then
    return out
  end
  local f = io.open(path, "r")
  if f == nil then
    error("bench.lua: cannot open " .. path)
  end
  for line in f:lines() do
    if #out >= MAX_LINES then
      break
    end
    if line ~= "" then
      out[#out + 1] = line
    end
  end
  f:close()
  return out
end

-- Main state: remember every thread so that done() can read its counters.
local threads = {}

function setup(thread)
  -- One start, hence one deadline, for all threads: wrk starts them one after the other, and a
  -- thread that parked its connections before another stopped sending would put idle connections
  -- ahead of that one's requests in the server's accept queue (see Drain above).
  if run_start == nil then
    run_start = clock()
  end
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
  thread:set("run_start", run_start)
end

-- Thread state. Globals (not locals) are what thread:get() can read from done().
function init(args)
  kind = args[1] or "static"
  tag = args[2] or "t"
  window = tonumber(args[3]) or 10
  slug = args[4] or "bench"
  codes = {}
  visitors = {}
  if kind == "click" or kind == "go" then
    codes = read_lines(args[5])
  elseif kind == "event" then
    visitors = read_lines(args[6])
  end
  statuses = {}
  sent = 0
  answered = 0
  n = 0
  clock_kind = clock_name
  started = run_start or clock()
  deadline = started + window
  last_response = started
  stopped = false
  -- Requests owed before the deadline: one per connection (wrk gives each thread
  -- CONNECTIONS_PER_THREAD), plus one per response that arrives before the deadline. delay() pays
  -- them out; once the deadline has passed, it parks any connection that is owed nothing.
  owed = tonumber(args[7]) or 0
  parked = 0
  drain_file = os.getenv("REFAPP_BENCH_DRAIN_FILE")
  -- wrk calls request() once on the first thread to check the request's format before the run
  -- starts; that request is never sent, so it must not be counted.
  skip_verify = (tid == 1)

  req_headers = { ["User-Agent"] = UA }
  if kind == "click" then
    req_method, req_path = "POST", "/api/v1/track/click"
    req_headers["Content-Type"] = "application/json"
    if #codes == 0 then
      error("bench.lua: click needs a codes file with at least one affiliate code")
    end
  elseif kind == "event" then
    req_method, req_path = "POST", "/api/v1/events"
    req_headers["Content-Type"] = "application/json"
    local secret = os.getenv("REFAPP_BENCH_SECRET")
    if secret == nil or secret == "" then
      error("bench.lua: set REFAPP_BENCH_SECRET to the program's live secret key")
    end
    req_headers["Authorization"] = "Bearer " .. secret
  elseif kind == "go" then
    req_method, req_path = "GET", nil  -- the path changes with every request (see request())
    if #codes == 0 then
      error("bench.lua: go needs a codes file with at least one affiliate code")
    end
  elseif kind == "static" then
    req_method, req_path = "GET", "/livez"
  elseif kind == "tracker" or kind == "tracker304" then
    req_method, req_path = "GET", os.getenv("REFAPP_BENCH_TRACKER_PATH") or "/t.js"
    req_headers["Accept-Encoding"] = "gzip, deflate, br, zstd"  -- what Chrome and Firefox send
    if kind == "tracker304" then
      local etag = os.getenv("REFAPP_BENCH_TRACKER_ETAG")
      if etag == nil or etag == "" then
        error("bench.lua: tracker304 needs REFAPP_BENCH_TRACKER_ETAG")
      end
      req_headers["If-None-Match"] = etag
    end
  else
    error("bench.lua: unknown kind " .. tostring(kind))
  end
end

local function body_for(i)
  if kind == "click" then
    local code = codes[((i * 7919 + tid) % #codes) + 1]
    return string.format(
      '{"program":"%s","ref":"%s","visitor_id":"v-%s-%d-%06d","url":"https://bench.example/?ref=%s"}',
      slug, code, tag, tid, i, code)
  elseif kind == "event" then
    local visitor = ""
    if #visitors > 0 then
      visitor = string.format(',"visitor_id":"%s"', visitors[((i * 7919 + tid * 104729) % #visitors) + 1])
    end
    return string.format(
      '{"event":"sale","order_id":"o-%s-%d-%06d"%s,"amount_cents":9900,"currency":"USD"}',
      tag, tid, i, visitor)
  end
  return nil
end

local function path_for(i)
  if kind == "go" then
    local code = codes[((i * 7919 + tid) % #codes) + 1]
    return string.format("/go/%s/%s?b=%s-%d-%06d", slug, code, tag, tid, i)
  end
  return req_path
end

function request()
  if skip_verify then
    skip_verify = false
    return wrk.format(req_method, path_for(0), req_headers, body_for(0))
  end
  n = n + 1
  sent = sent + 1
  return wrk.format(req_method, path_for(n), req_headers, body_for(n))
end

-- Called before each request of a connection (its first included): 0 = send now.
function delay()
  if owed > 0 then
    owed = owed - 1
    return 0
  end
  if clock() < deadline then
    return 0
  end
  parked = parked + 1
  return PARKED_MS
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  local now = clock()
  last_response = now
  if now < deadline then
    owed = owed + 1
  end
  if not stopped and now >= deadline and answered >= sent and owed == 0 then
    stopped = true          -- nothing of this thread is in flight and nothing more will be sent
    wrk.thread:stop()
    if drain_file ~= nil and drain_file ~= "" then
      local f = io.open(drain_file, "a")
      if f ~= nil then
        f:write(tostring(tid), "\n")
        f:close()
      end
    end
  end
end

function done(summary, latency, requests)
  local st = {}
  local total_sent, total_answered = 0, 0
  local first, last = nil, nil
  local k, clk = "?", "?"
  local per_thread = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses") or {}
    for code, count in pairs(s) do
      st[code] = (st[code] or 0) + count
    end
    total_sent = total_sent + (t:get("sent") or 0)
    total_answered = total_answered + (t:get("answered") or 0)
    local a, b = t:get("started"), t:get("last_response")
    if a ~= nil and (first == nil or a < first) then first = a end
    if b ~= nil and (last == nil or b > last) then last = b end
    k = t:get("kind") or k
    per_thread[#per_thread + 1] = string.format("[%d,%d,%d,%d]",
      t:get("sent") or 0, t:get("answered") or 0, t:get("owed") or 0, t:get("parked") or 0)
    clk = t:get("clock_kind") or clk
  end
  local parts = {}
  for code, count in pairs(st) do
    parts[#parts + 1] = string.format('"%d":%d', code, count)
  end
  local active = 0
  if first ~= nil and last ~= nil then
    active = last - first
  end
  local e = summary.errors
  io.write(string.format(
    'REFAPP_BENCH_REPORT {"kind":"%s","clock":"%s","statuses":{%s},"sent":%d,"answered":%d,"threads":[%s],'
      .. '"active_seconds":%.6f,"wrk_requests":%d,"wrk_duration_us":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%.1f,"mean":%.1f,"max":%.1f,"p50":%.1f,"p90":%.1f,"p99":%.1f}}\n',
    k, clk, table.concat(parts, ","), total_sent, total_answered, table.concat(per_thread, ","),
    active, summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
