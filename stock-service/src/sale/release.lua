-- Gives one held unit back (compensation). Idempotent: only the holder's own ticket releases.
-- KEYS[1] stock, KEYS[2] buyers
-- ARGV[1] user id, ARGV[2] ticket, ARGV[3] scope ('unclaimed' | 'any' | 'discard': drop the hold
-- without returning the unit), ARGV[4] restock channel, ARGV[5] goods id
-- Returns 1 released, 0 nothing held by this ticket, 2 held by this ticket but claimed by a
-- worker (its order is being written), which 'unclaimed' leaves alone.
local held = redis.call('HGET', KEYS[2], ARGV[1])
if not held or string.sub(held, 3, 38) ~= ARGV[2] then
  return 0
end
if string.sub(held, 1, 1) == 'c' and ARGV[3] == 'unclaimed' then
  return 2
end
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[3] == 'discard' then
  return 1
end
if redis.call('INCR', KEYS[1]) == 1 then
  -- Back from sold out: gateways clear their in-process sold-out flag.
  redis.call('PUBLISH', ARGV[4], ARGV[5])
end
return 1
