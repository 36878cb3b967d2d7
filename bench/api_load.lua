-- wrk script of bench/api_load.py: GET the score of many entities in rotation.
--
-- Environment (set by api_load.py, kept off the command line):
--   WZCREDIT_BENCH_PATHS  a file with one request path per line
--   WZCREDIT_BENCH_KEY    the bearer API key
-- Each wrk thread starts at its own offset of the list; `done` prints one JSON line.

local paths = {}
for line in io.lines(os.getenv("WZCREDIT_BENCH_PATHS")) do
  if #line > 0 then paths[#paths + 1] = line end
end
local headers = { ["Authorization"] = "Bearer " .. os.getenv("WZCREDIT_BENCH_KEY") }

local threads = {}
local counter = 0

function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
  table.insert(threads, thread)
end

local i = 0
function init(args)
  i = tonumber(offset) or 0
end

function request()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}, "latency_us": {"p50": %d, ' ..
    '"p90": %d, "p99": %d, "max": %d, "mean": %.1f}, "paths": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, #paths))
end
