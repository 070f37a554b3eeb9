-- wrk script for the rolling reload tests: POST {} and tally each answer by the generation it
-- carries (X-Modelaas-Generation), with the wall-clock time of the last answer of each one.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } modelaas_ts;
int clock_gettime(int clock, modelaas_ts *ts);
]]
local ts = ffi.new("modelaas_ts")
local function now()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: comparable with Python's time.time()
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = "{}"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  answers, last, bad = {}, {}, 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
  end
  local g = headers["x-modelaas-generation"] or "none"
  answers[g] = (answers[g] or 0) + 1
  last[g] = now()
end

function done(summary, latency, requests)
  local total, latest, non2xx = {}, {}, 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("bad")
    for g, n in pairs(t:get("answers")) do
      total[g] = (total[g] or 0) + n
    end
    for g, at in pairs(t:get("last")) do
      latest[g] = math.max(latest[g] or 0, at)
    end
  end
  local e = summary.errors
  io.write(string.format("ERRORS non2xx=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
    non2xx, e.connect, e.read, e.write, e.timeout, e.status))
  for g, n in pairs(total) do
    io.write(string.format("GENERATION %s answers=%d last=%.6f\n", g, n, latest[g]))
  end
end
