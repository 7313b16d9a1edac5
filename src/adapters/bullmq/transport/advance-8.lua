--[[
  portside test clock: let ARGV[2] milliseconds pass for one queue.

  Shifts every delayed job's score earlier by the given time (keeping BullMQ's 12 low
  ordering bits), promotes the jobs that are then due exactly as BullMQ's promoteDelayedJobs
  does (wait or prioritized, 'waiting' event, delay field reset, marker), re-arms the delayed
  marker, and shortens the rate-limiter window and deduplication TTLs by the same amount.

    KEYS[1] delayed
    KEYS[2] wait
    KEYS[3] prioritized
    KEYS[4] pc (priority counter)
    KEYS[5] marker
    KEYS[6] meta
    KEYS[7] events
    KEYS[8] limiter
    ARGV[1] key prefix of the queue ("<prefix>:<name>:")
    ARGV[2] milliseconds to let pass
    ARGV[3] now (ms)
    ARGV[4] approximate max length of the events stream
  Returns the number of jobs promoted.
]]
local rcall = redis.call
local delayedKey, waitKey, prioritizedKey, pcKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local markerKey, metaKey, eventsKey, limiterKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local prefix = ARGV[1]
local shift = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local maxEvents = tonumber(ARGV[4])
local SLOT = 0x1000

local members = rcall("ZRANGE", delayedKey, 0, -1, "WITHSCORES")
for i = 1, #members, 2 do
  local score = tonumber(members[i + 1])
  local shifted = score - shift * SLOT
  if shifted < 0 then
    shifted = score % SLOT
  end
  rcall("ZADD", delayedKey, shifted, members[i])
end

local paused = rcall("HEXISTS", metaKey, "paused") == 1
local due = rcall("ZRANGEBYSCORE", delayedKey, 0, (now + 1) * SLOT - 1)
for _, jobId in ipairs(due) do
  rcall("ZREM", delayedKey, jobId)
  local jobKey = prefix .. jobId
  local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
  if priority == 0 then
    rcall("LPUSH", waitKey, jobId)
  else
    local counter = rcall("INCR", pcKey)
    rcall("ZADD", prioritizedKey, priority * 0x100000000 + counter % 0x100000000, jobId)
  end
  rcall("XADD", eventsKey, "MAXLEN", "~", maxEvents, "*", "event", "waiting", "jobId", jobId,
    "prev", "delayed")
  rcall("HSET", jobKey, "delay", 0)
end

if not paused then
  if #due > 0 then
    rcall("ZADD", markerKey, 0, "0")
  end
  local nextDelayed = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  if nextDelayed[2] then
    rcall("ZADD", markerKey, math.floor(tonumber(nextDelayed[2]) / SLOT), "1")
  end
end

local function shorten(key)
  local ttl = rcall("PTTL", key)
  if ttl > 0 then
    if ttl <= shift then
      rcall("DEL", key)
    else
      rcall("PEXPIRE", key, ttl - shift)
    end
  end
end

shorten(limiterKey)
local pattern = string.gsub(prefix, "([%*%?%[%]\\])", "\\%1") .. "de:*"
local cursor = "0"
repeat
  local page = rcall("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    shorten(key)
  end
until cursor == "0"

return #due
