-- wrk script for benchmarks/glove.py: POST pre-built JSON bodies in turn to the URL given to wrk.
-- Usage: wrk -t1 -c8 -d10s --latency -s benchmarks/search.lua http://HOST:PORT/collections/glove/search -- BODIES
-- BODIES is a file with one JSON request body per line. done() prints one machine-readable line,
-- latencies in microseconds.

local bodies = {}
local i = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  assert(#bodies > 0, "no request bodies in " .. tostring(args[1]))
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "UMBRELLA_WRK requests=%d duration_us=%d status_errors=%d socket_errors=%d " ..
    "mean_us=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
