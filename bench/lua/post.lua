-- POST request bodies in rotation, and one machine-readable summary line at the end.
--   wrk -s bench/lua/post.lua URL -- PATH BODIES_FILE
-- BODIES_FILE holds records written by bench/bodies.py, each a header line
--   <body length> <content type> <Inference-Header-Content-Length, 0 for none>\n
-- followed by exactly that many body bytes (binary V2 bodies hold any byte, newlines too).
-- Each connection cycles through the bodies, so the server sees varied rows rather than one
-- cached body.

local requests = {}
local count = 0
local next_index = 0

local function read_records(path, file)
  local input = assert(io.open(file, "rb"))
  while true do
    local line = input:read("*l")
    if not line or line == "" then break end
    local length, content_type, header_length = line:match("^(%d+) (%S+) (%d+)$")
    assert(length, "bad record header in " .. file .. ": " .. line)
    local body = input:read(tonumber(length))
    assert(body and #body == tonumber(length), "truncated body in " .. file)
    local headers = { ["Content-Type"] = content_type }
    if header_length ~= "0" then
      headers["Inference-Header-Content-Length"] = header_length
    end
    count = count + 1
    requests[count] = wrk.format("POST", path, headers, body)
  end
  input:close()
end

function init(args)
  read_records(args[1], args[2])
  assert(count > 0, "no bodies in " .. args[2])
  next_index = math.random(count) - 1
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
