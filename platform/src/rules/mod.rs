//! Live rules: what an operator changes while a sale runs, as Sentinel's dashboard manages its
//! flow rules. Rate limits, anti-brush thresholds, the RPC clients' circuit breakers and retry
//! budget, and degrade switches are kept in Redis as one versioned rule set; every change is
//! logged with who made it and announced on a channel, and every process that has a setting a
//! rule governs follows it ([`LiveRules`]) within a second: the gateways (limits, switches, their
//! three RPC clients), order-service and the order workers (their stock-service client).
//! stock-service and user-service call no service and have none of these settings.
//!
//! A rule is an override: a limit left unset keeps the value the process was configured with,
//! so a process starts from its configuration and an empty rule set changes nothing. A rule
//! store that cannot be reached leaves the last rules in force.
//!
//! - [`Rules`]: what can be changed; [`RuleSet`]: a version of them, who made it and when.
//! - [`RuleStore`]: reads and changes them (one script: compare the version, write, log,
//!   announce).
//! - [`LiveRules`]: a process's copy, following the store.

mod live;
mod store;

use std::time::Duration;

use rpc::cluster::{BreakerConfig, RetryConfig};
use serde::{Deserialize, Serialize};

pub use self::live::{Following, LiveRules};
pub use self::store::{RuleError, RuleStore};

/// The rules an operator can change at run time. Unknown fields are refused, so a typo in a
/// change is an error, not a rule that silently does nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Rate limits and anti-brush thresholds of the gateways.
    pub limits: LimitRules,
    /// The per-node circuit breakers of every RPC client.
    pub breaker: BreakerRules,
    /// The retries and retry budget of every RPC client.
    pub retry: RetryRules,
    /// Degrade switches.
    pub switches: Switches,
}

/// Overrides of the gateways' limits (`SECKILL_LIMITS__*`); unset keeps the configured value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitRules {
    /// Requests per second one gateway process lets in, all users together.
    pub global_per_sec: Option<u32>,
    /// Requests per second one gateway process lets in from one IP address.
    pub per_ip_per_sec: Option<u32>,
    /// Sustained seckill calls per second per user (token bucket rate).
    pub per_user_per_sec: Option<u32>,
    /// Seckill calls a user may burst (token bucket size).
    pub per_user_burst: Option<u32>,
    /// Anti-brush: seckill calls per user per window.
    pub brush_limit: Option<u32>,
    /// Anti-brush window, in milliseconds.
    pub brush_window_ms: Option<u64>,
    /// Anti-brush trips that blacklist a user.
    pub strikes_to_ban: Option<u32>,
}

/// Overrides of the RPC clients' breaker settings (`SECKILL_<CLIENT>__BREAKER__*`, see
/// `rpc::cluster::BreakerConfig`); unset keeps the configured value. Percentages and
/// milliseconds, so that a rule set compares exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerRules {
    /// `false` turns breaking off (and closes every open breaker).
    pub enabled: Option<bool>,
    /// The sliding window the ratios are computed over, in milliseconds.
    pub window_ms: Option<u64>,
    /// Calls in the window before the ratios judge.
    pub min_calls: Option<u32>,
    /// Open when at least this percentage of the window's calls failed.
    pub failure_percent: Option<u32>,
    /// A call slower than this, in milliseconds, counts as slow.
    pub slow_call_ms: Option<u64>,
    /// Open when at least this percentage of the window's calls were slow.
    pub slow_call_percent: Option<u32>,
    /// Open after this many failures in a row (0: never for that reason).
    pub consecutive_failures: Option<u32>,
    /// How long an open breaker refuses calls, in milliseconds.
    pub open_for_ms: Option<u64>,
    /// Probes let through while half-open.
    pub half_open_probes: Option<u32>,
}

impl BreakerRules {
    /// The settings in force: `configured`, with what these rules set.
    pub fn over(&self, configured: &BreakerConfig) -> BreakerConfig {
        let ms = |rule: Option<u64>, configured: Duration| rule.map_or(configured, Duration::from_millis);
        let ratio = |rule: Option<u32>, configured: f64| rule.map_or(configured, |percent| f64::from(percent) / 100.0);
        BreakerConfig {
            enabled: self.enabled.unwrap_or(configured.enabled),
            window: ms(self.window_ms, configured.window),
            min_calls: self.min_calls.unwrap_or(configured.min_calls),
            failure_ratio: ratio(self.failure_percent, configured.failure_ratio),
            slow_call_threshold: ms(self.slow_call_ms, configured.slow_call_threshold),
            slow_call_ratio: ratio(self.slow_call_percent, configured.slow_call_ratio),
            consecutive_failures: self.consecutive_failures.unwrap_or(configured.consecutive_failures),
            open_for: ms(self.open_for_ms, configured.open_for),
            half_open_probes: self.half_open_probes.unwrap_or(configured.half_open_probes),
        }
    }
}

/// Overrides of the RPC clients' retry rules (`SECKILL_<CLIENT>__RETRY__*`, see
/// `rpc::cluster::RetryConfig`); unset keeps the configured value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryRules {
    /// Attempts per call, the first included (1: no retries).
    pub max_attempts: Option<u32>,
    /// Retries allowed, as a percentage of the calls (10: at most 10% extra calls).
    pub budget_percent: Option<u32>,
    /// Retries per second allowed whatever the traffic.
    pub budget_min_per_sec: Option<u32>,
}

impl RetryRules {
    /// The rules in force: `configured`, with what these rules set.
    pub fn over(&self, configured: &RetryConfig) -> RetryConfig {
        RetryConfig {
            max_attempts: self.max_attempts.unwrap_or(configured.max_attempts),
            budget_ratio: self.budget_percent.map_or(configured.budget_ratio, |percent| percent as f32 / 100.0),
            budget_min_per_sec: self.budget_min_per_sec.unwrap_or(configured.budget_min_per_sec),
            ..configured.clone()
        }
    }
}

/// Degrade switches: each turns something off, all off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    /// Close every sale now: order and path requests are answered `SALE_CLOSED`.
    pub sales_closed: bool,
    /// Stop serving captchas (they cost CPU): captcha requests are answered `DEGRADED`.
    pub captchas_off: bool,
    /// The gateways stop using their sold-out flags, so every attempt after a sell-out reaches
    /// Redis and the services (to show what the flag saves).
    pub sold_out_flag_off: bool,
}

impl Rules {
    /// Checks that every limit set is usable: a rate, burst or window of zero would stop every
    /// buyer, which is what `sales_closed` is for.
    pub fn validate(&self) -> Result<(), String> {
        let limits = &self.limits;
        let positive = [
            ("limits.global_per_sec", limits.global_per_sec.map(u64::from)),
            ("limits.per_ip_per_sec", limits.per_ip_per_sec.map(u64::from)),
            ("limits.per_user_per_sec", limits.per_user_per_sec.map(u64::from)),
            ("limits.per_user_burst", limits.per_user_burst.map(u64::from)),
            ("limits.brush_limit", limits.brush_limit.map(u64::from)),
            ("limits.brush_window_ms", limits.brush_window_ms),
            ("limits.strikes_to_ban", limits.strikes_to_ban.map(u64::from)),
        ];
        for (name, value) in positive {
            if value == Some(0) {
                return Err(format!("{name} must be at least 1 (use switches.sales_closed to stop buyers)"));
            }
        }
        if limits.brush_window_ms.is_some_and(|ms| ms > 3_600_000) {
            return Err("limits.brush_window_ms is at most one hour".into());
        }
        let (breaker, retry) = (&self.breaker, &self.retry);
        let ranges = [
            ("breaker.window_ms", breaker.window_ms, 1_000, 600_000),
            ("breaker.min_calls", breaker.min_calls.map(u64::from), 1, 1_000_000),
            ("breaker.failure_percent", breaker.failure_percent.map(u64::from), 1, 100),
            ("breaker.slow_call_ms", breaker.slow_call_ms, 1, 600_000),
            ("breaker.slow_call_percent", breaker.slow_call_percent.map(u64::from), 1, 100),
            ("breaker.consecutive_failures", breaker.consecutive_failures.map(u64::from), 0, 1_000_000),
            ("breaker.open_for_ms", breaker.open_for_ms, 1, 3_600_000),
            ("breaker.half_open_probes", breaker.half_open_probes.map(u64::from), 1, 1_000),
            // A call tries at most 8 nodes (`rpc::cluster::Tried`).
            ("retry.max_attempts", retry.max_attempts.map(u64::from), 1, 8),
            // tower's budget takes ratios up to 1000.
            ("retry.budget_percent", retry.budget_percent.map(u64::from), 0, 100_000),
            ("retry.budget_min_per_sec", retry.budget_min_per_sec.map(u64::from), 0, 1_000_000),
        ];
        for (name, value, least, most) in ranges {
            if let Some(value) = value.filter(|value| !(least..=most).contains(value)) {
                return Err(format!("{name} must be from {least} to {most}, not {value}"));
            }
        }
        Ok(())
    }
}

/// One version of the rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    /// 0 before any change; each change adds one.
    pub version: u64,
    /// The rules.
    pub rules: Rules,
    /// Who made the change (`user:<id>`, or `configuration` for version 0).
    pub changed_by: String,
    /// When, in milliseconds since the Unix epoch (0 for version 0).
    pub changed_at_ms: i64,
}

impl RuleSet {
    /// The rule set in force before anyone changed a rule: the configuration alone.
    pub fn initial() -> RuleSet {
        RuleSet { changed_by: "configuration".into(), ..RuleSet::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_change_parses_and_a_misspelt_rule_is_refused() {
        let rules: Rules = serde_json::from_str("{}").unwrap();
        assert_eq!(rules, Rules::default());
        let misspelt = serde_json::from_str::<Rules>(r#"{"limits": {"per_user_per_second": 3}}"#);
        assert!(misspelt.is_err());
    }

    #[test]
    fn limits_of_zero_are_refused() {
        let mut rules = Rules::default();
        assert!(rules.validate().is_ok());
        rules.limits.per_user_burst = Some(0);
        assert!(rules.validate().unwrap_err().contains("per_user_burst"));
        rules.limits.per_user_burst = Some(1);
        rules.limits.brush_window_ms = Some(7_200_000);
        assert!(rules.validate().is_err());
    }

    #[test]
    fn breaker_and_retry_rules_override_only_what_they_set_and_are_checked() {
        let configured = BreakerConfig::default();
        let rules = BreakerRules { failure_percent: Some(25), open_for_ms: Some(1_500), ..Default::default() };
        let live = rules.over(&configured);
        assert_eq!(live.failure_ratio, 0.25);
        assert_eq!(live.open_for, Duration::from_millis(1_500));
        assert_eq!(BreakerConfig { failure_ratio: 0.5, open_for: configured.open_for, ..live }, configured);
        let retry = RetryRules { max_attempts: Some(1), ..Default::default() }.over(&RetryConfig::default());
        assert_eq!(retry, RetryConfig { max_attempts: 1, ..Default::default() });

        let mut rules = Rules::default();
        rules.breaker.failure_percent = Some(101);
        assert!(rules.validate().unwrap_err().contains("breaker.failure_percent"));
        rules.breaker.failure_percent = Some(100);
        rules.retry.max_attempts = Some(0);
        assert!(rules.validate().unwrap_err().contains("retry.max_attempts"));
        rules.retry.max_attempts = Some(1);
        assert_eq!(rules.validate(), Ok(()));
    }
}
