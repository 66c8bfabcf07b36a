//! CPU time per program over a phase, from `/proc/<pid>/stat` (Linux): every process of the
//! machine, grouped by its command name (PostgreSQL's backends add up under `postgres`,
//! RabbitMQ under `beam.smp`), so each part of a stack run as its own processes shows its share,
//! the load driver's included.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc`'s CPU times: Linux's `USER_HZ`, 100 on every architecture it
/// exports to user space (what `sysconf(_SC_CLK_TCK)` answers).
const TICKS_PER_SECOND: f64 = 100.0;

/// Every process's command name and CPU clock ticks (user + system) used so far, by pid.
pub(super) fn cpu_ticks() -> BTreeMap<u32, (String, u64)> {
    let mut ticks = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return ticks };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        // Processes come and go while we read: one that left is simply not counted.
        if let Some((name, used)) = std::fs::read_to_string(entry.path().join("stat")).ok().as_deref().and_then(parse) {
            ticks.insert(pid, (name.to_owned(), used));
        }
    }
    ticks
}

/// `1234 (order-service) S 1 ... utime stime ...` → ("order-service", utime + stime). The name
/// may hold spaces and parentheses: it ends at the last `)`.
fn parse(stat: &str) -> Option<(&str, u64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1;
    // After the name: state (field 3), ..., utime (field 14), stime (field 15).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// The programs that used the most CPU between `before` and `after`, as shares of the machine
/// (`seconds` × cores), as one line: `busy 97% (gateway 31%, redis-server 14%, ...)`. Counted per
/// pid (a kernel worker renames itself with its work), added up by the name it has at the end.
pub(super) fn shares(
    before: &BTreeMap<u32, (String, u64)>,
    after: &BTreeMap<u32, (String, u64)>,
    seconds: f64,
) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let capacity = TICKS_PER_SECOND * seconds.max(f64::EPSILON) * cores;
    let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
    for (pid, (name, ticks)) in after {
        let earlier = before.get(pid).map_or(0, |(_, ticks)| *ticks);
        *by_name.entry(name.as_str()).or_insert(0) += ticks.saturating_sub(earlier);
    }
    // Under one percent is noise at this resolution.
    let mut used: Vec<(&str, u64)> =
        by_name.into_iter().filter(|(_, ticks)| *ticks as f64 >= capacity / 100.0).collect();
    used.sort_by_key(|(_, ticks)| std::cmp::Reverse(*ticks));
    let busy: u64 = used.iter().map(|(_, ticks)| ticks).sum();
    let top: Vec<String> =
        used.iter().take(10).map(|(name, ticks)| format!("{name} {:.0}%", 100.0 * *ticks as f64 / capacity)).collect();
    format!("busy {:.0}% ({})", 100.0 * busy as f64 / capacity, top.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_spaces_and_parentheses_ends_at_the_last_parenthesis() {
        let stat = "42 (tokio (rt) w) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse(stat), Some(("tokio (rt) w", 300)));
        assert_eq!(parse("42 (short) S 1"), None);
    }

    #[test]
    fn shares_are_of_the_whole_machine_most_used_first() {
        let ticks = TICKS_PER_SECOND as u64;
        let cores = std::thread::available_parallelism().unwrap().get() as u64;
        let named = |name: &str, ticks: u64| (name.to_owned(), ticks);
        let before =
            BTreeMap::from([(1, named("redis-server", 0)), (2, named("postgres", 10)), (3, named("kworker/a", 7))]);
        let after = BTreeMap::from([
            (1, named("redis-server", ticks * cores / 4)),
            (2, named("postgres", 10 + ticks * cores / 4)),
            (3, named("kworker/b", 7)),
            (4, named("postgres", ticks * cores / 4)),
        ]);
        assert_eq!(shares(&before, &after, 1.0), "busy 75% (postgres 50%, redis-server 25%)");
    }
}
