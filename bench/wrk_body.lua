-- wrk (Debian package wrk) posting one fixed body: wrk ... -s wrk_body.lua URL -- FILE CONTENT-TYPE
-- Used by ca_bench.py for the TSA (the same TimeStampReq each time; every answer is a new token).
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  wrk.headers["Content-Type"] = args[2]
  f:close()
end
