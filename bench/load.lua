-- wrk script for every benchmark scenario. The scenario is chosen by the environment:
--   BENCH_MODE   get_agent | list | list_deep | numbers | create | attach_detach | mixed | dispatch
--   BENCH_DATA   a file of lines "<api key> <id> [<id>]" (what each mode needs, see below)
-- Every response that is not 2xx is counted, and done() prints one line "BENCH_RESULT {json}".

local mode = os.getenv("BENCH_MODE")
local data_path = os.getenv("BENCH_DATA")

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

local rows = {}
local index = 0
local non2xx = 0
local step = 0
local pair = nil

local function load_rows()
  local file = assert(io.open(data_path, "r"))
  for line in file:lines() do
    local fields = {}
    for field in line:gmatch("%S+") do
      table.insert(fields, field)
    end
    table.insert(rows, fields)
  end
  file:close()
  assert(#rows > 0, "no rows in " .. data_path)
end

function init(args)
  index = wrk.thread:get("index")
  math.randomseed(os.time() * 1000 + index)
  load_rows()
  -- attach_detach runs one connection per thread, so each thread's pair is never shared; the
  -- offset gives each run other pairs than the run before, whose last request may still be
  -- finishing on the server when this one starts.
  local offset = tonumber(os.getenv("BENCH_PAIR_OFFSET") or "0")
  pair = rows[((index - 1 + offset) % #rows) + 1]
end

local function headers(key, json)
  local h = { ["Authorization"] = "Bearer " .. key }
  if json then
    h["Content-Type"] = "application/json"
  end
  return h
end

local function pick()
  return rows[math.random(#rows)]
end

local builders = {}

builders.get_agent = function()
  local row = pick()
  return wrk.format("GET", "/v1/agents/" .. row[2], headers(row[1]))
end

builders.list = function()
  local row = pick()
  return wrk.format("GET", "/v1/agents?limit=20", headers(row[1]))
end

builders.list_deep = function()
  local row = pick()
  return wrk.format("GET", "/v1/agents?limit=20&starting_after=" .. row[2], headers(row[1]))
end

builders.numbers = function()
  local row = pick()
  return wrk.format("GET", "/v1/numbers", headers(row[1]))
end

builders.create = function()
  local row = pick()
  step = step + 1
  local body = '{"name":"Bench agent ' .. index .. "-" .. step .. '","type":"outbound",'
    .. '"instructions":"Confirm the appointment.","language":"en-US"}'
  return wrk.format("POST", "/v1/agents", headers(row[1], true), body)
end

-- POST /v1/calls from an outbound agent (rows: "<api key> <agent id>"), to a number the sandbox
-- answers and completes.
builders.dispatch = function()
  local row = pick()
  return wrk.format(
    "POST", "/v1/calls", headers(row[1], true), '{"agent_id":"' .. row[2] .. '","to":"+14155550123"}'
  )
end

-- The phase advances on responses, not requests: wrk calls request() once more than it sends
-- (on thread 1, to check for pipelining), which would otherwise start that thread on a detach.
local attached = false

builders.attach_detach = function()
  local key, agent, number = pair[1], pair[2], pair[3]
  if not attached then
    return wrk.format(
      "POST", "/v1/agents/" .. agent .. "/numbers", headers(key, true), '{"number_id":"' .. number .. '"}'
    )
  end
  return wrk.format("DELETE", "/v1/agents/" .. agent .. "/numbers/" .. number, headers(key))
end

local mixed = { builders.get_agent, builders.get_agent, builders.list, builders.numbers }
builders.mixed = function()
  step = step + 1
  return mixed[(step % #mixed) + 1]()
end

request = builders[mode]
assert(request, "unknown BENCH_MODE " .. tostring(mode))

function response(status, headers, body)
  if mode == "attach_detach" then
    attached = not attached
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    wrk.thread:set("non2xx", non2xx)
    if non2xx <= 3 then
      io.stderr:write("bench: status " .. status .. ": " .. body:sub(1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local non2xx_total = 0
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + (tonumber(thread:get("non2xx")) or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d,"status_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, non2xx_total, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
