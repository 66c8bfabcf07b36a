//! Order results in Redis, for polling: one hash per goods, user id → `q:<ticket>:<ms>` (queued
//! at that Redis time), `s:<ticket>:<order id>` (success), `f:<ticket>:<reason>` (failed) or
//! `x:<ticket>:<order id>` (the order was cancelled: the buyer may buy again).
//! Each entry names its ticket, so a late "queued" never hides the final outcome of the same
//! ticket.

use contracts::keyspace::Keyspace;
use contracts::order::OrderResult;
use platform::redis::Shared;
use redis::Script;
use uuid::Uuid;

/// Sets `queued` (with Redis's time) unless the entry already holds an outcome of this very
/// ticket (a fast worker).
const MARK_QUEUED: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 3, 38) == ARGV[2] then
  return 0
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], 'q:' .. ARGV[2] .. ':' .. now)
return 1";

/// Records final outcomes of one goods without ever hiding a newer ticket's outcome: a success
/// overwrites anything but another ticket's success; a failure (or a cancellation) only writes
/// over nothing or over its own ticket's entry (a late redelivery of an old, failed ticket must not cover the user's
/// later order). ARGV: user id, ticket, value, user id, ticket, value, ...
const RECORD: &str = r"
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  local own = current and string.sub(current, 3, 38) == ARGV[i + 1]
  local write = (not current) or own
  if not write and string.sub(ARGV[i + 2], 1, 1) == 's' then
    write = string.sub(current, 1, 1) ~= 's'
  end
  if write then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  end
end
return 0";

/// A final outcome to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The order exists.
    Success(i64),
    /// The attempt failed (its unit was released, or had been lost with Redis data).
    Failed(String),
    /// The order was cancelled and its unit is back on sale.
    Cancelled(i64),
}

/// The final outcome of one ticket, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketOutcome {
    /// The goods.
    pub goods_id: i64,
    /// The buyer.
    pub user_id: i64,
    /// The ticket.
    pub ticket: Uuid,
    /// What became of it.
    pub outcome: Outcome,
}

/// What is recorded for one user and goods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The ticket the entry is about.
    pub ticket: Uuid,
    /// Its state.
    pub result: OrderResult,
    /// For a queued ticket: how long it has been queued (by Redis's clock), when known.
    pub queued_for_ms: Option<i64>,
}

/// The results store.
#[derive(Clone, Debug)]
pub struct Results {
    redis: Shared,
    keys: Keyspace,
    mark_queued: Script,
    record: Script,
}

impl Results {
    /// A store with keys named by `keys` (the sale's keyspace: results share its hash tag).
    pub fn new(redis: Shared, keys: Keyspace) -> Results {
        Results { redis, keys, mark_queued: Script::new(MARK_QUEUED), record: Script::new(RECORD) }
    }

    fn key(&self, goods_id: i64) -> String {
        self.keys.sale(goods_id).results
    }

    /// Records that `ticket` is queued (after the broker confirmed its message).
    pub async fn mark_queued(&self, goods_id: i64, user_id: i64, ticket: Uuid) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        let _: i64 = self
            .mark_queued
            .key(self.key(goods_id))
            .arg(user_id)
            .arg(ticket.to_string())
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Records final outcomes: one script call per goods (a batch is usually one goods).
    pub async fn record(&self, outcomes: &[TicketOutcome]) -> redis::RedisResult<()> {
        let mut by_goods: std::collections::BTreeMap<i64, Vec<&TicketOutcome>> = Default::default();
        for outcome in outcomes {
            by_goods.entry(outcome.goods_id).or_default().push(outcome);
        }
        let mut conn = self.redis.clone();
        for (goods_id, outcomes) in by_goods {
            let key = self.key(goods_id);
            let mut invocation = self.record.key(&key);
            for TicketOutcome { user_id, ticket, outcome, .. } in outcomes {
                let value = match outcome {
                    Outcome::Success(order_id) => format!("s:{ticket}:{order_id}"),
                    Outcome::Failed(reason) => format!("f:{ticket}:{reason}"),
                    Outcome::Cancelled(order_id) => format!("x:{ticket}:{order_id}"),
                };
                invocation.arg(*user_id).arg(ticket.to_string()).arg(value);
            }
            let _: i64 = invocation.invoke_async(&mut conn).await?;
        }
        Ok(())
    }

    /// Every entry of a goods: the tickets still queued, and how many failed.
    pub async fn summary(&self, goods_id: i64) -> redis::RedisResult<(Vec<Uuid>, i64)> {
        let mut conn = self.redis.clone();
        let entries: Vec<String> = redis::cmd("HVALS").arg(self.key(goods_id)).query_async(&mut conn).await?;
        let (mut queued, mut failed) = (Vec::new(), 0);
        for recorded in entries.iter().filter_map(|entry| parse(entry)) {
            match recorded.result {
                OrderResult::Queued { ticket } => queued.push(ticket),
                OrderResult::Failed { .. } => failed += 1,
                _ => {}
            }
        }
        Ok((queued, failed))
    }

    /// What is recorded for this user and goods, if anything.
    pub async fn get(&self, goods_id: i64, user_id: i64) -> redis::RedisResult<Option<Recorded>> {
        let mut conn = self.redis.clone();
        let ((seconds, micros), entry): ((i64, i64), Option<String>) =
            redis::pipe().cmd("TIME").cmd("HGET").arg(self.key(goods_id)).arg(user_id).query_async(&mut conn).await?;
        Ok(entry.as_deref().and_then(|entry| parse_at(entry, seconds * 1000 + micros / 1000)))
    }
}

fn parse(entry: &str) -> Option<Recorded> {
    parse_at(entry, 0)
}

/// Parses an entry as of `now_ms` (Redis time), which ages a queued one.
fn parse_at(entry: &str, now_ms: i64) -> Option<Recorded> {
    let (state, rest) = entry.split_once(':')?;
    let ticket: Uuid = rest.get(..36)?.parse().ok()?;
    let detail = rest.get(37..).unwrap_or_default();
    let mut queued_for_ms = None;
    let result = match state {
        "q" => {
            queued_for_ms = detail.parse::<i64>().ok().filter(|_| now_ms > 0).map(|at| now_ms - at);
            OrderResult::Queued { ticket }
        }
        "s" => OrderResult::Success { order_id: detail.parse().ok()? },
        "f" => OrderResult::Failed { reason: detail.to_owned() },
        "x" => OrderResult::Cancelled { order_id: detail.parse().ok()? },
        _ => return None,
    };
    Some(Recorded { ticket, result, queued_for_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let ticket = Uuid::new_v4();
        assert_eq!(parse(&format!("q:{ticket}")).unwrap().result, OrderResult::Queued { ticket });
        assert_eq!(parse(&format!("s:{ticket}:42")).unwrap().result, OrderResult::Success { order_id: 42 });
        let failed = parse(&format!("f:{ticket}:sold out: at the database")).unwrap();
        assert_eq!(
            failed,
            Recorded {
                ticket,
                result: OrderResult::Failed { reason: "sold out: at the database".into() },
                queued_for_ms: None
            }
        );
        let queued = parse_at(&format!("q:{ticket}:1000"), 4_500).unwrap();
        assert_eq!((queued.result, queued.queued_for_ms), (OrderResult::Queued { ticket }, Some(3_500)));
        assert_eq!(parse(&format!("x:{ticket}:42")).unwrap().result, OrderResult::Cancelled { order_id: 42 });
        assert_eq!(parse("x:garbage"), None);
    }
}
