-- wrk (https://github.com/wg/wrk, Debian package wrk) posting pre-signed e-ZLA, each exactly once.
-- Used by load_bench.py: wrk -t C -c C -s wrk_post.lua URL -- DIR COUNT THREADS
-- One connection per thread, so each thread is a client that waits for its answer (as clinics do).
-- Thread k posts DIR/<i>.xml for every i = k (mod THREADS), then writes DIR/done-k and stops.
-- done() prints one JSON line: latency percentiles (us) and the status counts.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {}
local sent = 0
local answered = 0
local statuses = {}
local dir

function init(args)
  dir = args[1]
  local count, nthreads = tonumber(args[2]), tonumber(args[3])
  local headers = { ["Content-Type"] = "application/xml" }
  for i = id, count - 1, nthreads do
    local f = assert(io.open(string.format("%s/%d.xml", dir, i), "rb"))
    table.insert(requests, wrk.format("POST", "/v1/ezla", headers, f:read("*a")))
    f:close()
  end
end

local checked = false

function request()
  -- wrk calls thread 0's request() once before the run to count pipelined requests; that
  -- request is never sent, so it must not use up a document.
  if id == 0 and not checked then
    checked = true
    return wrk.format("GET", "/health/live")
  end
  sent = sent + 1
  if sent <= #requests then
    return requests[sent]
  end
  -- wrk asks for one more request after the last answer; a cheap one, never counted below.
  return wrk.format("GET", "/health/live")
end

function response(status, headers, body)
  answered = answered + 1
  if answered <= #requests then
    statuses[status] = (statuses[status] or 0) + 1
  end
  if answered == #requests then
    local parts = {}
    for code, n in pairs(statuses) do
      table.insert(parts, string.format('"%d": %d', code, n))
    end
    local f = assert(io.open(string.format("%s/done-%d", dir, id), "w"))
    f:write("{" .. table.concat(parts, ", ") .. "}")
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({ 50, 90, 99 }) do
    table.insert(p, string.format('"p%d": %d', q, latency:percentile(q)))
  end
  io.write(string.format('WRK {"latency_us": {%s}, "requests": %d, "errors": %d}\n',
    table.concat(p, ", "), summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
