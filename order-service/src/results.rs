//! Order results in Redis, for polling: one hash per goods, user id → `q:<ticket>:<ms>` (queued
//! at that Redis time), `s:<ticket>:<order id>` (success), `f:<ticket>:<reason>` (failed) or
//! `x:<ticket>:<order id>` (the order was cancelled: the buyer may buy again).
//! Each entry names its ticket, so a late "queued" never hides the final outcome of the same
//! ticket.
//!
//! The "queued" marks of concurrent purchases share their round trip: each waits in a queue, and
//! one task sends whatever is waiting as one script call per goods, in one pipeline, then answers
//! every purchase in it (a group commit: a lone purchase waits only one scheduler turn; under load
//! a mark costs a fraction of a round trip, 1 / the marks sent together).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use contracts::keyspace::Keyspace;
use contracts::order::OrderResult;
use platform::redis::Shared;
use redis::Script;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Sets `queued` (with Redis's time) for each (user id, ticket) pair of ARGV, unless the entry
/// already holds an outcome of this very ticket (a fast worker).
const MARK_QUEUED: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if not (current and string.sub(current, 3, 38) == ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], 'q:' .. ARGV[i + 1] .. ':' .. now)
  end
end
return 0";

/// Most marks sent in one round trip.
const MAX_MARKS_PER_TRIP: usize = 512;

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
    record: Script,
    /// The queue of "queued" marks, its sending task started by the first mark.
    marks: Arc<OnceLock<mpsc::UnboundedSender<Mark>>>,
}

/// A "queued" mark waiting for its round trip, and who waits for its answer.
struct Mark {
    goods_id: i64,
    user_id: i64,
    ticket: Uuid,
    done: oneshot::Sender<redis::RedisResult<()>>,
}

impl Results {
    /// A store with keys named by `keys` (the sale's keyspace: results share its hash tag).
    pub fn new(redis: Shared, keys: Keyspace) -> Results {
        Results { redis, keys, record: Script::new(RECORD), marks: Arc::default() }
    }

    fn key(&self, goods_id: i64) -> String {
        self.keys.sale(goods_id).results
    }

    /// Records that `ticket` is queued (after the broker confirmed its message), together with the
    /// marks of the purchases queued at the same moment.
    pub async fn mark_queued(&self, goods_id: i64, user_id: i64, ticket: Uuid) -> redis::RedisResult<()> {
        let marks = self.marks.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(send_marks(self.redis.clone(), self.keys.clone(), receiver));
            sender
        });
        let (done, answer) = oneshot::channel();
        let gone = || redis::RedisError::from((redis::ErrorKind::Io, "the queued-mark task stopped"));
        marks.send(Mark { goods_id, user_id, ticket, done }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
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

/// The task behind [`Results::mark_queued`]: takes every mark waiting, sends them in one round
/// trip (one script call per goods), answers each, and again; ends with the last store handle.
async fn send_marks(mut redis: Shared, keys: Keyspace, mut waiting: mpsc::UnboundedReceiver<Mark>) {
    let script = Script::new(MARK_QUEUED);
    let mut batch = Vec::new();
    while waiting.recv_many(&mut batch, MAX_MARKS_PER_TRIP).await > 0 {
        let mut by_goods: BTreeMap<i64, redis::ScriptInvocation<'_>> = BTreeMap::new();
        for mark in &batch {
            by_goods
                .entry(mark.goods_id)
                .or_insert_with(|| script.key(keys.sale(mark.goods_id).results))
                .arg(mark.user_id)
                .arg(mark.ticket.to_string());
        }
        let invocations: Vec<_> = by_goods.values().collect();
        let sent: redis::RedisResult<Vec<i64>> = platform::redis::invoke_pipelined(&mut redis, &invocations).await;
        let sent = sent.map(drop);
        for mark in batch.drain(..) {
            // A purchase that stopped waiting needs no answer.
            let _ = mark.done.send(sent.clone());
        }
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
