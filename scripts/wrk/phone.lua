-- POST /api/v1/wechat/phone-number with pre-sealed payloads.
-- args: PHONE_FILE, lines of "access token<TAB>JSON body" (examples/loadgen_payloads.rs)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local i = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   entries = {}
   for _, line in ipairs(read_lines(args[1])) do
      local token, body = line:match("^([^\t]+)\t(.+)$")
      entries[#entries + 1] = { token = token, body = body }
   end
   i = id * 7919
end

function request()
   i = i + 1
   local entry = entries[(i % #entries) + 1]
   headers["Authorization"] = "Bearer " .. entry.token
   return wrk.format("POST", nil, headers, entry.body)
end
