-- wrk script for the lookup benchmark: POST /graphql with a bearer token, rotating over
-- prepared JSON bodies, one per line (a fixed lookup document with the code as a variable, so
-- servers hit their parse and validation caches).
--   wrk ... -s scripts/wrk_lookup.lua http://127.0.0.1:PORT/graphql -- BODIES_FILE TOKEN

local requests = {}
local next_index = 1
local threads_made = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("thread_number", threads_made)
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
