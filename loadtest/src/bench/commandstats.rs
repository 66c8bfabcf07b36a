//! Redis commands by name, as the server counts them (`INFO commandstats`): read before and
//! after a phase, the difference is what the phase cost Redis, every program of the stack
//! included (they share one Redis server here).

use std::collections::BTreeMap;

/// Calls per command since the server started (or its stats were last reset).
pub(super) async fn calls(redis: &deadpool_redis::Pool) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut conn = redis.get().await?;
    let info: String = deadpool_redis::redis::cmd("INFO").arg("commandstats").query_async(&mut *conn).await?;
    Ok(parse(&info))
}

/// `cmdstat_evalsha:calls=12,usec=...` lines → {"evalsha": 12}.
fn parse(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|field| field.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// The commands of `after - before` per `per` (purchases), most used first, as one line:
/// `42.1 (evalsha 12.0, ping 6.0, ...)`.
pub(super) fn per(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, per: usize) -> String {
    let per = per.max(1) as f64;
    let mut used: Vec<(&str, u64)> = after
        .iter()
        .map(|(name, calls)| (name.as_str(), calls.saturating_sub(before.get(name).copied().unwrap_or(0))))
        .filter(|(_, calls)| *calls > 0)
        .collect();
    used.sort_by_key(|(_, calls)| std::cmp::Reverse(*calls));
    let total: u64 = used.iter().map(|(_, calls)| calls).sum();
    let top: Vec<String> =
        used.iter().take(8).map(|(name, calls)| format!("{name} {:.1}", *calls as f64 / per)).collect();
    format!("{:.1} ({})", total as f64 / per, top.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_per_purchase_come_from_the_difference_most_used_first() {
        let before = parse("# Commandstats\r\ncmdstat_ping:calls=10,usec=5\r\ncmdstat_get:calls=1,usec=1\r\n");
        let after =
            parse("cmdstat_ping:calls=30,usec=9\r\ncmdstat_get:calls=1,usec=1\r\ncmdstat_evalsha:calls=40,usec=3\r\n");
        assert_eq!(per(&before, &after, 10), "6.0 (evalsha 4.0, ping 2.0)");
    }
}
