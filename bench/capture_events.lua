-- wrk: POST /t/e, one page view a request, from a pool of 100,000 visitors (about five page
-- views each in a 30 s run at 30,000 hits/s), each event with its own ID.
-- SITE_KEY comes from the environment.
local site_key = os.getenv("SITE_KEY")
-- Which wrk process this is (bench/capture.sh runs one a replica), so that no two send the
-- same visitor and event ID.
local replica = tonumber(os.getenv("REPLICA") or "1")
local counter = 0
-- A global, not a local: setup's thread:set writes the thread's global of that name.
thread_id = 0
local ids = 0

function setup(thread)
  ids = ids + 1
  thread:set("thread_id", ids)
end

function init(args)
  math.randomseed(replica * 104729 + thread_id * 7919)
end

function request()
  counter = counter + 1
  local visitor = string.format("v1_bench-visitor-%06d", math.random(1, 100000))
  local body = string.format(
    '{"k":"%s","v":"%s","l":"https://www.example.com/landing?utm_campaign=bench&utm_source=wrk","e":[{"n":"page_view","id":"r%d-t%d-%d","u":"https://www.example.com/p/%d"}]}',
    site_key, visitor, replica, thread_id, counter, counter % 50)
  return wrk.format("POST", "/t/e", { ["Content-Type"] = "text/plain", ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0" }, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_s=%.2f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
