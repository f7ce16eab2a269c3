-- POST JSON bodies in rotation (one body per line of BODIES_FILE), then one summary line.
--   wrk -s post_json.lua URL -- PATH BODIES_FILE
local requests = {}
local count = 0
local next_index = 0

function init(args)
  local path, file = args[1], args[2]
  local headers = { ["Content-Type"] = "application/json" }
  for body in io.lines(file) do
    count = count + 1
    requests[count] = wrk.format("POST", path, headers, body)
  end
  assert(count > 0, "no bodies in " .. file)
  next_index = math.random(count) - 1
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p99": %d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
