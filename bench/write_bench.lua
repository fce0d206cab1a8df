-- wrk script of bench/write_bench.py: POST a company with a unique name (no domain) per request.
--   wrk -t1 -c64 -d10s -s bench/write_bench.lua http://127.0.0.1:3000/api/v1/crm/companies -- API_KEY PREFIX
local counter = 0
local headers = {}
local prefix = "c"

function init(args)
  headers["X-API-Key"] = args[1]
  headers["Content-Type"] = "application/json"
  math.randomseed(os.time())
  prefix = (args[2] or "c") .. "-" .. tostring(math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  return wrk.format("POST", nil, headers, '{"name":"' .. prefix .. "-" .. counter .. '","industry":"Bench"}')
end
