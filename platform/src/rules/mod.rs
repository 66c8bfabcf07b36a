//! Live rules: what an operator changes while a sale runs, as Sentinel's dashboard manages its
//! flow rules. Rate limits, anti-brush thresholds and degrade switches are kept in Redis as one
//! versioned rule set; every change is logged with who made it and announced on a channel, and
//! every process follows it ([`LiveRules`]) within a second.
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

use serde::{Deserialize, Serialize};

pub use self::live::LiveRules;
pub use self::store::{RuleError, RuleStore};

/// The rules an operator can change at run time. Unknown fields are refused, so a typo in a
/// change is an error, not a rule that silently does nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Rate limits and anti-brush thresholds of the gateways' per-user gate.
    pub limits: LimitRules,
    /// Degrade switches.
    pub switches: Switches,
}

/// Overrides of the gateways' per-user limits (`SECKILL_LIMITS__*`); unset keeps the
/// configured value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitRules {
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
}
