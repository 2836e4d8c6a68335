-- POST /api/v1/auth/web/login (the front-end flow of the website app), every request with a
-- code never used before and a user never seen before (ow_w<RUN><thread>x<counter>).
-- args: [RUN]
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local counter = 0

function init(args)
   run = args[1] or tostring(os.time())
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local body = string.format('{"app":"website","code":"w%s%dx%d-%d"}', run, id, counter, counter)
   return wrk.format(nil, nil, nil, body)
end
