--[[
  portside: the active jobs whose lock holds one of the given tokens.

  A worker calls it after a lost reply to a fetch: the fetch may have moved a job to active
  under the worker's token without the worker ever learning its id.

    KEYS[1] active list
    ARGV[1] key prefix of the queue ("<prefix>:<name>:")
    ARGV[2..] lock tokens
  Returns a flat list: job id, token, job id, token, ...
]]
local rcall = redis.call
local wanted = {}
for i = 2, #ARGV do
  wanted[ARGV[i]] = true
end
local found = {}
for _, jobId in ipairs(rcall("LRANGE", KEYS[1], 0, -1)) do
  local token = rcall("GET", ARGV[1] .. jobId .. ":lock")
  if token and wanted[token] then
    found[#found + 1] = jobId
    found[#found + 1] = token
  end
end
return found
