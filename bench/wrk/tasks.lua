-- wrk script: every request acts as a random seeded user with that user's own token.
-- Arguments (after `--`): token file ("user token" per line), operation, tasks per user.
-- Operations: list, get, create, update (PATCH completed), constant (bench/framework_floor.py).
-- Task ids follow bench/seed.py.

local tokens = {}
local op = "list"
local tasks_per_user = 100
local create_body = '{"title":"bench task","description":"benchmark"}'
local done_bodies = { '{"completed":true}', '{"completed":false}' }

function setup(thread)
   local counter = (_G.thread_counter or 0) + 1
   _G.thread_counter = counter
   thread:set("thread_id", counter)
end

function init(args)
   op = args[2] or op
   tasks_per_user = tonumber(args[3] or tasks_per_user)
   for line in io.lines(args[1]) do
      local user, token = line:match("^(%S+)%s+(%S+)$")
      if user then
         tokens[#tokens + 1] = { user, "Bearer " .. token }
      end
   end
   math.randomseed(os.time() * 1000 + (thread_id or 0))
end

local function task_id(user)
   local k = tonumber(user) * 1000 + math.random(tasks_per_user)
   return string.format("00000000-0000-4000-8000-%012d", k)
end

function request()
   local pick = tokens[math.random(#tokens)]
   local user, headers = pick[1], { ["Authorization"] = pick[2] }
   local base = "/api/" .. user .. "/tasks"
   if op == "list" then
      return wrk.format("GET", base, headers)
   elseif op == "constant" then
      return wrk.format("GET", "/api/" .. user .. "/constant", headers)
   elseif op == "get" then
      return wrk.format("GET", base .. "/" .. task_id(user), headers)
   elseif op == "create" then
      headers["Content-Type"] = "application/json"
      return wrk.format("POST", base, headers, create_body)
   elseif op == "update" then
      headers["Content-Type"] = "application/json"
      return wrk.format("PATCH", base .. "/" .. task_id(user), headers, done_bodies[math.random(2)])
   end
   error("unknown operation " .. op)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, '
         .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, '
         .. '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean))
end
