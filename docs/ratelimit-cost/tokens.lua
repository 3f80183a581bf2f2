-- Each request: a random user's list endpoint with that user's own token.
local users = {}
init = function(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do
    local user, token = line:match("^(%S+) (%S+)$")
    users[#users + 1] = { path = "/api/" .. user .. "/tasks", token = token }
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
request = function()
  local u = users[math.random(#users)]
  return wrk.format("GET", u.path, { ["Authorization"] = "Bearer " .. u.token })
end
done = function(summary, latency, requests)
  local codes = summary.errors
  io.write(string.format("RESULT rps=%.1f p50_ms=%.2f p99_ms=%.2f non2xx=%d sockerr=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, codes.status, codes.connect + codes.read + codes.write + codes.timeout))
end
