-- wrk script for the transaction benchmark: POST /graphql with a bearer token, rotating over
-- prepared JSON bodies, one per line (one debit document with the transaction as a variable).
-- Besides wrk's own counts it counts 2xx answers that carry GraphQL errors or no balance, and
-- prints them after the run as "GraphQL errors: N", "Unexpected answers: N" and the first one.
--   wrk ... -s scripts/wrk_tx.lua http://127.0.0.1:PORT/graphql -- BODIES_FILE TOKEN

local requests = {}
local next_index = 1
local threads = {}

-- Per-thread counters (globals, so that done() can read them with thread:get).
graphql_errors = 0
unexpected = 0
first_problem = ""

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

function init(args)
  local bodies_file, token = args[1], args[2]
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }
  for body in io.lines(bodies_file) do
    if body ~= "" then
      requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    end
  end
  assert(#requests > 0, "no request bodies in " .. bodies_file)
  -- Threads start at different places in the list.
  next_index = ((thread_number or 1) - 1) * 4999 % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

local function note(status, body)
  if first_problem == "" then
    first_problem = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 400)
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    note(status, body)  -- wrk counts these itself ("Non-2xx or 3xx responses")
  elseif string.find(body, '"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
    note(status, body)
  elseif not string.find(body, '"balance"', 1, true) then
    unexpected = unexpected + 1
    note(status, body)
  end
end

function done(summary, latency, requests)
  local errors, odd, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("graphql_errors")
    odd = odd + thread:get("unexpected")
    local problem = thread:get("first_problem")
    if first == "" and problem ~= "" then
      first = problem
    end
  end
  io.write(string.format("GraphQL errors: %d\nUnexpected answers: %d\n", errors, odd))
  if first ~= "" then
    io.write("First problem: " .. string.gsub(first, "\n", " ") .. "\n")
  end
end
