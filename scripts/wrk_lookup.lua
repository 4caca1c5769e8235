-- wrk script for the lookup benchmark: POST /graphql, one giftcard(code:) lookup per request.
-- The document is fixed and the code travels as a variable, so servers hit their parse and
-- validation caches. Codes rotate over a file of one code per line.
--   wrk ... -s scripts/wrk_lookup.lua http://127.0.0.1:PORT -- CODES_FILE TOKEN

local query = "query Lookup($code: String!) { giftcard(code: $code) { limitedByPermission "
  .. "results { id memberId balance codes { id codeType code expiresOn isMasked } } } }"

local requests = {}
local next_index = 1
local threads_made = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("thread_number", threads_made)
end

function init(args)
  local codes_file, token = args[1], args[2]
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }
  for code in io.lines(codes_file) do
    if code ~= "" then
      local body = '{"query": "' .. query .. '", "variables": {"code": "' .. code .. '"}}'
      requests[#requests + 1] = wrk.format("POST", "/graphql", headers, body)
    end
  end
  assert(#requests > 0, "no codes in " .. codes_file)
  -- Threads start at different places in the list.
  next_index = ((thread_number or 1) - 1) * 4999 % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
