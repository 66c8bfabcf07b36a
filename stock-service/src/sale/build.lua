-- Builds the sale state of one goods from PostgreSQL's figures, under the goods' advisory lock
-- (held exclusive by the caller: no order batch is half-way).
-- KEYS[1] meta, KEYS[2] stock, KEYS[3] buyers
-- ARGV[1] start_ms, ARGV[2] end_ms, ARGV[3] price_cents, ARGV[4] initial stock (of this bucket, for
-- a goods split into stock buckets), ARGV[5] mode, ARGV[6] restock channel, ARGV[7] goods id,
-- ARGV[8] this build's id (a unit taken from a bucket under an earlier build is not deposited),
-- then pairs: user id, buyer entry ('c:<ticket>:<ms>') for every order already written.
-- Modes:
--   'missing': only if the sale state is absent (Redis lost it): buyers = the orders.
--   'resync':  always: the orders are merged into the buyers Redis has (live reservations whose
--              orders are not written yet stay), for a state Redis restored from its AOF, which
--              may lack its last second of writes.
-- Either way the stock is what no one holds: initial + in - out - buyers (in, out: units moved
-- between stock buckets, 0 for a goods of one). Meta (window, price) is always refreshed.
-- Returns 1 built, 0 already present (mode 'missing').
local present = redis.call('EXISTS', KEYS[1]) == 1
redis.call('HSET', KEYS[1], 'start_ms', ARGV[1], 'end_ms', ARGV[2], 'price_cents', ARGV[3], 'initial', ARGV[4])
if present and ARGV[5] == 'missing' then
  return 0
end
redis.call('HSET', KEYS[1], 'built', ARGV[8])
if not present then
  redis.call('DEL', KEYS[3])
end
for i = 9, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
local moved = redis.call('HMGET', KEYS[1], 'in', 'out')
local held = redis.call('HLEN', KEYS[3])
local stock = math.max(tonumber(ARGV[4]) + tonumber(moved[1] or '0') - tonumber(moved[2] or '0') - held, 0)
local before = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[2], stock)
if stock > 0 and (not present or before <= 0) then
  -- Units on sale (again): gateways clear their in-process sold-out flag.
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
return 1
