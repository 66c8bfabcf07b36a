-- Appended to gate.lua: once the user is admitted, checks the captcha answer (single use, wrong
-- answers counted) and stores a new hidden path, all in the gate's round trip.
-- KEYS[5] path, KEYS[6] captcha answer, KEYS[7] wrong answers (all under the user's hash tag)
-- ARGV[8] the new path, ARGV[9] its TTL (s), ARGV[10] the answer, lower case ('' when there is
--   none to check here: test mode checked it in the gateway, or captchas are off),
-- ARGV[11] the captcha TTL (s), ARGV[12] wrong answers allowed
-- Returns gate()'s refusal, or {0, 0} issued, {10, 0} wrong answer, {11, ms} too many wrong ones.
local verdict = gate()
if verdict[1] ~= 0 then
  return verdict
end
if ARGV[10] ~= '' then
  local failures = tonumber(redis.call('GET', KEYS[7]) or '0')
  if failures >= tonumber(ARGV[12]) then
    return {11, tonumber(ARGV[11]) * 1000}
  end
  -- Consumed whether right or wrong: an answer is good for one try.
  local expected = redis.call('GETDEL', KEYS[6])
  if not expected or string.lower(expected) ~= ARGV[10] then
    redis.call('INCR', KEYS[7])
    redis.call('EXPIRE', KEYS[7], ARGV[11])
    return {10, 0}
  end
end
redis.call('SET', KEYS[5], ARGV[8], 'EX', ARGV[9])
return {0, 0}
