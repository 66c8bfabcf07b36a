-- The per-user gate of the seckill endpoints, in one round trip, shared by every gateway:
-- an anti-brush window counter, then a token bucket.
-- KEYS[1] bucket (hash: tokens, ts), KEYS[2] brush counter
-- ARGV[1] rate (tokens per second), ARGV[2] burst, ARGV[3] brush limit, ARGV[4] brush window (ms)
-- Returns {1, 0} when allowed, {0, ms to wait} when not.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local clicks = redis.call('INCR', KEYS[2])
if clicks == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
if clicks > tonumber(ARGV[3]) then
  return {0, math.max(redis.call('PTTL', KEYS[2]), 1)}
end

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or burst
local last = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + (now - last) * rate / 1000)
if tokens < 1 then
  return {0, math.ceil((1 - tokens) * 1000 / rate)}
end
redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {1, 0}
