-- POST /api/v1/auth/login, every request with a code never used before.
-- args: MODE [POOL] [RUN]
--   MODE=new:       every code names a new user (o_n<RUN><thread>x<counter>): insert path.
--   MODE=returning: each thread cycles through POOL users of its own (r<thread>_0 …), so
--                   after its first POOL requests every login updates an existing user's
--                   session_key (the common path), and no two in-flight logins share a user.
-- RUN keeps codes and names unique across runs on the same database.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local counter = 0

function init(args)
   mode = args[1] or "returning"
   pool = tonumber(args[2] or "250")
   run = args[3] or tostring(os.time())
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local name
   if mode == "new" then
      name = string.format("n%s%dx%d", run, id, counter)
   else
      name = string.format("r%d_%d", id, counter % pool)
   end
   local body = string.format('{"code":"%s-%s-%d-%d"}', name, run, id, counter)
   return wrk.format(nil, nil, nil, body)
end
