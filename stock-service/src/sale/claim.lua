-- Claims reservations for order writing, so the reconciler can no longer release them.
-- KEYS[1] buyers; ARGV = user id, ticket, user id, ticket, ...
-- Returns one code per pair: 0 claimed, 1 already claimed by this ticket, 2 lost (no such hold).
local out = {}
for i = 1, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and string.sub(held, 3, 38) == ARGV[i + 1] then
    if string.sub(held, 1, 1) == 'c' then
      out[#out + 1] = 1
    else
      redis.call('HSET', KEYS[1], ARGV[i], 'c' .. string.sub(held, 2))
      out[#out + 1] = 0
    end
  else
    out[#out + 1] = 2
  end
end
return out
