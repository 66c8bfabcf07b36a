-- The purchase gate, atomically: window, dedupe, stock, decrement, buyer.
-- KEYS[1] meta (hash: start_ms, end_ms, price_cents, built), KEYS[2] stock, KEYS[3] buyers (hash)
-- ARGV[1] user id, ARGV[2] ticket (36-char UUID)
-- ARGV[3] (stock buckets only) units carried here from other buckets by take.lua, ARGV[4] the
--   build they were taken under: deposited first, whatever the answer, unless a rebuild came
--   between (then they are not counted twice: the rebuild recounted every unit from PostgreSQL).
-- Returns {code, a, b}:
--   0 reserved (a = stock left, b = price), 1 duplicate, 2 sold out,
--   3 not started (a = start ms), 4 ended, 5 no sale state (not warmed up)
local meta = redis.call('HMGET', KEYS[1], 'start_ms', 'end_ms', 'price_cents', 'built')
if not meta[1] then
  return {5, 0, 0}
end
if ARGV[3] and meta[4] == ARGV[4] then
  redis.call('INCRBY', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'in', ARGV[3])
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now < tonumber(meta[1]) then
  return {3, tonumber(meta[1]), 0}
end
if now >= tonumber(meta[2]) then
  return {4, 0, 0}
end
-- Dedupe before the decrement: a repeat click never burns stock.
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  if string.sub(held, 3, 38) == ARGV[2] then
    -- The same ticket again (the caller retried): the same reservation, nothing more taken.
    return {0, tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(meta[3])}
  end
  return {1, 0, 0}
end
local stock = tonumber(redis.call('GET', KEYS[2]) or '0')
if stock <= 0 then
  return {2, 0, 0}
end
local left = redis.call('DECR', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[1], 'r:' .. ARGV[2] .. ':' .. now)
return {0, left, tonumber(meta[3])}
