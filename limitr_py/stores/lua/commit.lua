-- limitr_py: one commit, atomically (DESIGN.md Storage). Time is passed in by the engine; nothing here reads it.
--
-- KEYS[1..n]  record keys (hashes: v = version, d = data; a deleted record keeps its version, without d)
-- KEYS[n+1]   outbox hash (event id -> JSON [group, body, consumers]); KEYS[n+2] outbox order list; both only
--             when the commit has events or acks
-- ARGV[1]     the header, space-separated: n, events, acks, then 3 per record key: expected version ('-' =
--             unchecked), op ('.' none, 'D' delete, 'W' write), ttl in ms ('-' = keep forever)
-- then the data of each written key, in key order; 4 per event: id, group, body, consumers (JSON); 2 per ack:
-- id, consumers still owed (JSON; '' = done). (One header instead of four arguments per key: the client packs
-- every argument in Python, and that cost more than the script runs.)
-- Returns {1} when applied, else {0, key, version, data, ...} for every key whose version moved.
local head = {}
for token in string.gmatch(ARGV[1], '%S+') do
  head[#head + 1] = token
end
local n, ne, na = tonumber(head[1]), tonumber(head[2]), tonumber(head[3])
local moved = {}
for i = 1, n do
  local want = head[3 + (i - 1) * 3 + 1]
  if want ~= '-' then
    local state = redis.call('HMGET', KEYS[i], 'v', 'd')
    local have = tonumber(state[1] or '0')
    if have ~= tonumber(want) then
      moved[#moved + 1] = KEYS[i]
      moved[#moved + 1] = tostring(have)
      moved[#moved + 1] = state[2] or false
    end
  end
end
if #moved > 0 then
  table.insert(moved, 1, 0)
  return moved
end
local o = 1
for i = 1, n do
  local h = 3 + (i - 1) * 3
  local op, ttl = head[h + 2], head[h + 3]
  if op == 'D' then
    redis.call('HINCRBY', KEYS[i], 'v', 1)
    redis.call('HDEL', KEYS[i], 'd')
    redis.call('PERSIST', KEYS[i])
  elseif op == 'W' then
    o = o + 1
    redis.call('HINCRBY', KEYS[i], 'v', 1)
    redis.call('HSET', KEYS[i], 'd', ARGV[o])
    if ttl ~= '-' then
      redis.call('PEXPIRE', KEYS[i], ttl)
    else
      redis.call('PERSIST', KEYS[i])
    end
  end
end
local outbox, order = KEYS[n + 1], KEYS[n + 2]
for _ = 1, ne do
  redis.call('HSET', outbox, ARGV[o + 1], cjson.encode({ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]}))
  redis.call('RPUSH', order, ARGV[o + 1])
  o = o + 4
end
for _ = 1, na do
  local id, owed = ARGV[o + 1], ARGV[o + 2]
  if owed == '' then
    redis.call('HDEL', outbox, id)
    redis.call('LREM', order, 1, id)
  else
    local entry = redis.call('HGET', outbox, id)
    if entry then
      local t = cjson.decode(entry)
      t[3] = owed
      redis.call('HSET', outbox, id, cjson.encode(t))
    end
  end
  o = o + 2
end
return {1}
