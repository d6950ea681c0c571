-- A mixed workload: each request picks a path at random by weight.
-- Arguments after `--`: weight:path pairs, e.g. 50:/healthz 25:/api/sleep/50
dofile("/srv/bench/wrk/report.lua")

local requests, cumulative, total = {}, {}, 0

function init(args)
  for _, pair in ipairs(args) do
    local weight, path = pair:match("^(%d+):(/.*)$")
    assert(weight, "expected weight:path, got " .. pair)
    total = total + tonumber(weight)
    table.insert(requests, wrk.format("GET", path))
    table.insert(cumulative, total)
  end
  -- A different sequence in each wrk thread (each runs init with its own Lua state).
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
end

function request()
  local draw = math.random() * total
  for i, bound in ipairs(cumulative) do
    if draw < bound then
      return requests[i]
    end
  end
  return requests[#requests]
end
