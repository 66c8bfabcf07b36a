-- Stock buckets: takes one unit from this bucket for a buyer whose own bucket is sold out (the
-- unit is then carried to the buyer's bucket by reserve.lua, where the buyer is deduplicated).
-- KEYS[1] meta, KEYS[2] stock
-- Returns {1, build} taken (the build it was taken under), {0, ''} this bucket is empty too,
-- {-1, ''} no sale state. `out` counts the units that left, `in` (reserve.lua) those that came:
-- per bucket, stock + buyers = initial + in - out at every step.
local built = redis.call('HGET', KEYS[1], 'built')
if not built then
  return {-1, ''}
end
if tonumber(redis.call('GET', KEYS[2]) or '0') <= 0 then
  return {0, ''}
end
redis.call('DECR', KEYS[2])
redis.call('HINCRBY', KEYS[1], 'out', 1)
return {1, built}
