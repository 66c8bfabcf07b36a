-- The anti-brush gate of one user (or one client IP) on the seckill routes: a blacklist check,
-- an anti-brush window whose repeated trips blacklist the caller, and, for users, a token
-- bucket. Every key carries the caller's hash tag (one Cluster slot). This file only defines
-- `gate()`; the script sent is it followed by what runs once the caller is admitted, in the same
-- round trip: `admit.lua` (nothing), `issue_path.lua` or `redeem_path.lua`.
-- KEYS[1] brush counter, KEYS[2] strikes, KEYS[3] ban, KEYS[4] bucket (hash: tokens, ts; users only)
-- ARGV[1] brush limit, ARGV[2] brush window (ms), ARGV[3] strikes to ban, ARGV[4] strike window (ms),
-- ARGV[5] ban (ms), ARGV[6] bucket rate (tokens per second), ARGV[7] bucket size
-- gate() returns {code, ms}: 0 allowed; 1 limited (ms to wait); 2 blacklisted (ms left); 3 blacklisted
-- by this very call (ms left).
local function gate()
  local banned = redis.call('PTTL', KEYS[3])
  if banned > 0 then
    return {2, banned}
  end

  local clicks = redis.call('INCR', KEYS[1])
  if clicks == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  if clicks > tonumber(ARGV[1]) then
    if clicks == tonumber(ARGV[1]) + 1 then
      -- The first call over the limit in this window is one strike; enough strikes, a ban.
      local strikes = redis.call('INCR', KEYS[2])
      if strikes == 1 then
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
      end
      if strikes >= tonumber(ARGV[3]) then
        redis.call('SET', KEYS[3], '1', 'PX', ARGV[5])
        redis.call('DEL', KEYS[2])
        return {3, tonumber(ARGV[5])}
      end
    end
    return {1, math.max(redis.call('PTTL', KEYS[1]), 1)}
  end

  if #KEYS < 4 then
    return {0, 0}
  end
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local rate = tonumber(ARGV[6])
  local burst = tonumber(ARGV[7])
  local bucket = redis.call('HMGET', KEYS[4], 'tokens', 'ts')
  local tokens = tonumber(bucket[1]) or burst
  local last = tonumber(bucket[2]) or now
  tokens = math.min(burst, tokens + (now - last) * rate / 1000)
  if tokens < 1 then
    return {1, math.ceil((1 - tokens) * 1000 / rate)}
  end
  redis.call('HSET', KEYS[4], 'tokens', tokens - 1, 'ts', now)
  redis.call('PEXPIRE', KEYS[4], math.ceil(burst * 1000 / rate) + 1000)
  return {0, 0}
end
