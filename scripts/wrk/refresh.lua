-- POST /api/v1/auth/refresh as chains of rotations: each thread takes its share of the
-- refresh tokens in a file (one live session each) and, on every answer, queues the new
-- refresh token it got, which a later request presents. Every token is presented exactly
-- once, as a real client would, so reuse detection never fires.
-- wrk calls response() before request() on the same connection, so with at least as many
-- tokens per thread as connections per thread the queue never runs dry.
-- args: REFRESH_FILE THREADS
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local queue, head, tail = {}, 1, 0 -- a FIFO: queue[head .. tail]
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   local threads = tonumber(args[2] or "1")
   for n, token in ipairs(read_lines(args[1])) do
      if (n - 1) % threads == id then
         tail = tail + 1
         queue[tail] = token
      end
   end
end

function request()
   local token = queue[head]
   if head <= tail then
      queue[head] = nil
      head = head + 1
   else
      token = "exhausted" -- answered 401 invalid_grant and counted as non-2xx
   end
   return wrk.format("POST", nil, headers, '{"refresh_token":"' .. token .. '"}')
end

function response(status, _, body)
   local token = status == 200 and body:match('"refresh_token":"([^"]+)"')
   if token then
      tail = tail + 1
      queue[tail] = token
   end
end
