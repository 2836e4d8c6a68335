-- GET with a Bearer token, cycling through the access tokens in a file (one per line).
-- Drives both /api/v1/me on the service and the ceiling. args: TOKENS_FILE
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local i = 0
local headers = {}

function init(args)
   tokens = read_lines(args[1])
   i = id * 7919
end

function request()
   i = i + 1
   headers["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1]
   return wrk.format("GET", nil, headers, nil)
end
