-- Builds the sale state of one goods from PostgreSQL's figures, unless it is already there.
-- KEYS[1] meta, KEYS[2] stock, KEYS[3] buyers
-- ARGV[1] start_ms, ARGV[2] end_ms, ARGV[3] price_cents, ARGV[4] initial stock, ARGV[5] stock,
-- ARGV[6] restock channel, ARGV[7] goods id,
-- then pairs: user id, buyer entry ('c:<ticket>:<ms>') for every order already written.
-- Meta (window, price) is always refreshed. Returns 1 built, 0 already present.
local present = redis.call('EXISTS', KEYS[1]) == 1
redis.call('HSET', KEYS[1], 'start_ms', ARGV[1], 'end_ms', ARGV[2], 'price_cents', ARGV[3], 'initial', ARGV[4])
if present then
  return 0
end
redis.call('SET', KEYS[2], ARGV[5])
redis.call('DEL', KEYS[3])
for i = 8, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
if tonumber(ARGV[5]) > 0 then
  -- Units on sale (again): gateways clear their in-process sold-out flag.
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
return 1
