-- Appended to gate.lua: once the user is admitted, uses up their hidden path for the goods
-- (`GETDEL`: good for one order attempt, right or wrong), in the gate's round trip.
-- KEYS[5] path (under the user's hash tag); ARGV[8] the path the order URL carries
-- Returns gate()'s refusal, or {0, 0} accepted, {20, 0} not this user's live path.
local verdict = gate()
if verdict[1] ~= 0 then
  return verdict
end
if redis.call('GETDEL', KEYS[5]) ~= ARGV[8] then
  return {20, 0}
end
return {0, 0}
