-- Stock buckets: takes one unit from this bucket for a buyer whose own bucket is sold out (the
-- unit is then carried to the buyer's bucket by reserve.lua, where the buyer is deduplicated).
-- KEYS[1] meta, KEYS[2] stock; ARGV[1] `peek`: take nothing, only count (the buyer's own bucket)
-- Returns {code, build, in, out}: code 1 taken (under that build), 0 this bucket is empty too
-- (or peeked), -1 no sale state; `out` counts the units that left this bucket, `in`
-- (reserve.lua) those that came: per bucket, stock + buyers = initial + in - out at every step,
-- and over all buckets, out - in is the units on their way from one bucket to another.
local built = redis.call('HGET', KEYS[1], 'built')
if not built then
  return {-1, '', 0, 0}
end
if ARGV[1] ~= 'peek' and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
  redis.call('HINCRBY', KEYS[1], 'out', 1)
  local moved = redis.call('HMGET', KEYS[1], 'in', 'out')
  return {1, built, tonumber(moved[1] or '0'), tonumber(moved[2] or '0')}
end
local moved = redis.call('HMGET', KEYS[1], 'in', 'out')
return {0, '', tonumber(moved[1] or '0'), tonumber(moved[2] or '0')}
