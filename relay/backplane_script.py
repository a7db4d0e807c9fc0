"""The backplane's Lua script (relay/backplane.py): what Redis runs, atomically, for
each batch of events of one channel. Its keys and arguments are the backplane's to
give; it is kept here so the adapter stays readable.

- The channel's next ``seq`` (``HINCRBY``-like, in its meta hash with its ``epoch``),
  the event appended to the channel's stream (ID ``seq-0``), its caller's rate checked
  in a bucket every relay shares, and the batch ``PUBLISH``ed once.
- History bounds, as one relay's (`relay.fanout`): events, bytes and age per channel
  (oldest first), and bytes of all channels together (`history_total_bytes`: the
  channels holding the most are trimmed down to one level, to 15/16 of the bound).
- Channels are counted in Redis (`max_channels`), so a channel made through any relay
  counts on all of them; the installation's own (pinned) are not counted. A channel
  nobody published on for its history's age and a minute is forgotten (its stream has
  expired by then): its keys are deleted and its bytes leave the total.
"""

from __future__ import annotations

from typing import Final

NAMES: Final = "dialjam:names"  # sorted set: channel → ms of its last publish (unpinned)
SIZES: Final = "dialjam:sizes"  # sorted set: channel → bytes its history holds
TOTAL: Final = "dialjam:total"  # bytes of every channel's history
GRACE_MS: Final = 60_000  # a stream outlives its history's age by this much

PUBLISH_LUA: Final = r"""
-- KEYS: the channel's meta hash (seq, epoch, bytes, first), its stream, NAMES, SIZES, TOTAL
-- ARGV: name; the relay's limits, space-separated (max events, max bytes, max age ms,
--       pub/sub channel, caller rate (0: none), burst, event overhead, max channels (0:
--       none), pinned (1/0), max total bytes (0: none)); the epoch if new; ts ms; the
--       events, one a line: data, addressee, origin, caller (empty: none), tab-separated
--       (event data is compact JSON: no tab, no newline)
-- Returns "EPOCH SEQ,SEQ,…": each event's seq, or -1 (refused: the caller's rate) or -2
-- (refused: too many channels). One string: cheap to send and to read.
local meta, stream, names, sizes, total_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local name, ts = ARGV[1], ARGV[4]
local L = {}
for v in string.gmatch(ARGV[2], '%S+') do L[#L + 1] = v end
local max_events, max_bytes, max_age = tonumber(L[1]), tonumber(L[2]), tonumber(L[3])
local pubsub, rate, burst, overhead = L[4], tonumber(L[5]), tonumber(L[6]), tonumber(L[7])
local max_channels, pinned, max_total = tonumber(L[8]), L[9] == '1', tonumber(L[10])
local events = {}
for line in string.gmatch(ARGV[5], '[^\n]+') do
  local data, to, origin, caller = string.match(line, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
  events[#events + 1] = {data, to, origin, caller}
end
local tsn = tonumber(ts)
local keep_ms = max_age + 60000

local function meta_of(ch) return 'dialjam:ch:' .. ch .. ':meta' end
local function log_of(ch) return 'dialjam:ch:' .. ch .. ':log' end

-- Forget channels nobody published on for keep_ms (their streams have expired).
local function sweep(limit)
  local gone = redis.call('ZRANGEBYSCORE', names, '-inf', '(' .. (tsn - keep_ms), 'LIMIT', 0, limit)
  for _, old in ipairs(gone) do
    local b = tonumber(redis.call('ZSCORE', sizes, old)) or 0
    if b ~= 0 then redis.call('DECRBY', total_key, b) end
    redis.call('ZREM', sizes, old)
    redis.call('ZREM', names, old)
    redis.call('DEL', meta_of(old), log_of(old))
  end
end

if not pinned and max_channels > 0 and not redis.call('ZSCORE', names, name) then
  if redis.call('ZCARD', names) >= max_channels then sweep(100) end
  if redis.call('ZCARD', names) >= max_channels then
    local refused = {}
    for i = 1, #events do refused[i] = -2 end
    return ' ' .. table.concat(refused, ',')
  end
end

if redis.call('EXISTS', meta) == 0 then redis.call('DEL', stream) end
redis.call('HSETNX', meta, 'epoch', ARGV[3])
local held = redis.call('HMGET', meta, 'epoch', 'seq', 'bytes', 'first')
local epoch = held[1]
local seq, bytes, first = tonumber(held[2]) or 0, tonumber(held[3]) or 0, tonumber(held[4]) or 1
local was = bytes
if bytes > 0 and redis.call('EXISTS', stream) == 0 then
  -- The stream expired (a quiet channel that is kept: the installation's): nothing held.
  bytes, first = 0, seq + 1
end
local now = nil
local seqs, lines = {}, {name, epoch}
for _, e in ipairs(events) do
  local data, to, origin, caller = e[1], e[2], e[3], e[4]
  local allowed = true
  if caller ~= '' and rate > 0 then
    if now == nil then
      local t = redis.call('TIME')
      now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    end
    local key = 'dialjam:rate:' .. caller
    local b = redis.call('HMGET', key, 'tokens', 'at')
    local since = math.max(0, now - (tonumber(b[2]) or now))
    local tokens = math.min(burst, (tonumber(b[1]) or burst) + since * rate)
    if tokens < 1 then
      allowed = false
    else
      redis.call('HSET', key, 'tokens', tostring(tokens - 1), 'at', tostring(now))
      redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
    end
  end
  if allowed then
    seq = seq + 1
    local cost = string.len(data) + overhead
    redis.call('XADD', stream, seq .. '-0', 't', ts, 'd', data, 'a', to, 'c', cost)
    bytes = bytes + cost
    seqs[#seqs + 1] = seq
    lines[#lines + 1] = seq .. '\t' .. ts .. '\t' .. to .. '\t' .. origin .. '\t' .. data
  else
    seqs[#seqs + 1] = -1
  end
end
-- The channel's bounds: events, bytes and age, oldest first (seqs held: first..seq).
local oldest = tsn - max_age
local cut = first
while cut <= seq do
  local e = redis.call('XRANGE', stream, cut .. '-0', cut .. '-0')[1]
  if e ~= nil then
    if seq - cut + 1 <= max_events and bytes <= max_bytes and tonumber(e[2][2]) >= oldest then
      break
    end
    bytes = bytes - tonumber(e[2][8])
  end
  cut = cut + 1
end
if cut > first then redis.call('XTRIM', stream, 'MINID', cut .. '-0') end
redis.call('HSET', meta, 'seq', seq, 'bytes', bytes, 'first', cut)
redis.call('PEXPIRE', stream, keep_ms)
if not pinned then redis.call('ZADD', names, tsn, name) end
redis.call('ZADD', sizes, bytes, name)
local total = tonumber(redis.call('INCRBY', total_key, bytes - was))

-- Drop the oldest events of channel `ch` until it holds at most `level` bytes.
local function trim(ch, level)
  local m, s = meta_of(ch), log_of(ch)
  local h = redis.call('HMGET', m, 'bytes', 'first')
  local b, f = tonumber(h[1]) or 0, tonumber(h[2]) or 1
  local before = b
  while b > level do
    local batch = redis.call('XRANGE', s, f .. '-0', '+', 'COUNT', 64)
    if #batch == 0 then b = 0 break end
    for _, e in ipairs(batch) do
      if b <= level then break end
      b = b - tonumber(e[2][8])
      f = tonumber(string.match(e[1], '^%d+')) + 1
    end
  end
  if b < 0 then b = 0 end
  redis.call('XTRIM', s, 'MINID', f .. '-0')
  redis.call('HSET', m, 'bytes', b, 'first', f)
  redis.call('ZADD', sizes, b, ch)
  return tonumber(redis.call('INCRBY', total_key, b - before))
end

-- All channels' bound: the channels holding the most are cut down to one level.
if max_total > 0 and total > max_total then
  sweep(1000)
  total = tonumber(redis.call('GET', total_key)) or 0
  local target = math.floor(max_total * 15 / 16)
  local rounds = 0
  while total > target and rounds < 10000 do
    rounds = rounds + 1
    local top = redis.call('ZREVRANGE', sizes, 0, 1, 'WITHSCORES')
    if #top == 0 then break end
    local big, big_bytes = top[1], tonumber(top[2])
    local level = math.max(tonumber(top[4]) or 0, big_bytes - (total - target))
    if level >= big_bytes then level = big_bytes - 1 end
    total = trim(big, level)
  end
end
if #lines > 2 then redis.call('PUBLISH', pubsub, table.concat(lines, '\n')) end
return epoch .. ' ' .. table.concat(seqs, ',')
"""
