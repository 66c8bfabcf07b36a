-- Changes the live rules if nobody changed them since the caller read them.
-- KEYS[1] the rule set in force (hash: version, body), KEYS[2] the log (list, newest first)
-- ARGV[1] the version the caller read, ARGV[2] the new body (JSON: rules, who, when),
-- ARGV[3] the channel that announces changes, ARGV[4] how many log entries to keep
-- Returns {1, new version} or {0, the version in force} when the caller's read is stale.
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then
  return {0, version}
end
version = version + 1
redis.call('HSET', KEYS[1], 'version', version, 'body', ARGV[2])
redis.call('LPUSH', KEYS[2], version .. ' ' .. ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('PUBLISH', ARGV[3], version)
return {1, version}
