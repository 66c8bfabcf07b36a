//! The registry's Lua scripts. Each runs atomically and reads the time from Redis itself, so the
//! expiry of an entry never depends on the clocks of the hosts that write and read it.

use std::sync::LazyLock;

use redis::Script;

/// Adds or refreshes one entry and prunes the expired ones. Publishes a change when the entry was
/// not there (first registration, or back after expiring or after a Redis restart).
///
/// KEYS: nodes zset (addr → expiry ms), info hash (addr → instance JSON), changes channel.
/// ARGV: addr, instance JSON, TTL ms, service. Returns 1 if the entry was added, 0 if refreshed.
pub(super) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local ttl = tonumber(ARGV[3])
        for _, addr in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
            redis.call('HDEL', KEYS[2], addr)
        end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local added = redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        -- The keys outlive their longest-lived entry, and no more: nothing is left behind.
        for _, key in ipairs({KEYS[1], KEYS[2]}) do
            if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
        end
        if added == 1 then redis.call('PUBLISH', KEYS[3], ARGV[4]) end
        return added
        ",
    )
});

/// Removes one entry and publishes the change. KEYS as for [`HEARTBEAT`]; ARGV: addr, service.
pub(super) static DEREGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local removed = redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('HDEL', KEYS[2], ARGV[1])
        if removed == 1 then redis.call('PUBLISH', KEYS[3], ARGV[2]) end
        return removed
        ",
    )
});

/// Lists the live entries of a service. KEYS: nodes zset, info hash.
/// Returns `{now_ms, {json, expiry_ms, json, expiry_ms, ...}}`.
pub(super) static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
        local out = {}
        for i = 1, #live, 2 do
            local info = redis.call('HGET', KEYS[2], live[i])
            if info then
                table.insert(out, info)
                table.insert(out, live[i + 1])
            end
        end
        return {now, out}
        ",
    )
});
