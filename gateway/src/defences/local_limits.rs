//! In-process limits: a global rate and a per-IP rate (governor's GCRA, lock-free). The live
//! rules can change either rate ([`LocalLimits::set`]): a new rate starts with a fresh limiter.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use arc_swap::ArcSwap;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::settings::LimitSettings;

/// The local limits of this gateway process (cheap to clone; clones share the limiters).
#[derive(Clone, Debug)]
pub(crate) struct LocalLimits {
    limiters: Arc<ArcSwap<Limiters>>,
    clock: DefaultClock,
}

#[derive(Debug)]
struct Limiters {
    global_per_sec: u32,
    per_ip_per_sec: u32,
    global: Arc<DefaultDirectRateLimiter>,
    per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn quota(per_sec: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN))
}

impl LocalLimits {
    /// Limits from settings.
    pub(crate) fn new(settings: &LimitSettings) -> LocalLimits {
        let limiters = Limiters {
            global_per_sec: settings.global_per_sec,
            per_ip_per_sec: settings.per_ip_per_sec,
            global: Arc::new(RateLimiter::direct(quota(settings.global_per_sec))),
            per_ip: Arc::new(RateLimiter::keyed(quota(settings.per_ip_per_sec))),
        };
        LocalLimits { limiters: Arc::new(ArcSwap::from_pointee(limiters)), clock: DefaultClock::default() }
    }

    /// Puts these rates in force; a rate that did not change keeps its limiter and its state.
    pub(crate) fn set(&self, global_per_sec: u32, per_ip_per_sec: u32) {
        let current = self.limiters.load();
        if current.global_per_sec == global_per_sec && current.per_ip_per_sec == per_ip_per_sec {
            return;
        }
        tracing::info!(global_per_sec, per_ip_per_sec, "local rate limits changed");
        let global = match current.global_per_sec == global_per_sec {
            true => current.global.clone(),
            false => Arc::new(RateLimiter::direct(quota(global_per_sec))),
        };
        let per_ip = match current.per_ip_per_sec == per_ip_per_sec {
            true => current.per_ip.clone(),
            false => Arc::new(RateLimiter::keyed(quota(per_ip_per_sec))),
        };
        self.limiters.store(Arc::new(Limiters { global_per_sec, per_ip_per_sec, global, per_ip }));
    }

    /// `Ok` if a request from `ip` may proceed, else the seconds to wait.
    pub(crate) fn check(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let wait = |not_until: governor::NotUntil<governor::clock::QuantaInstant>| {
            not_until.wait_time_from(self.clock.now()).as_secs() + 1
        };
        // Per IP first: one flooding client is turned away before it uses up everyone's share
        // of the global allowance.
        let limiters = self.limiters.load();
        if let Some(ip) = ip {
            limiters.per_ip.check_key(&ip).map_err(wait)?;
        }
        limiters.global.check().map_err(wait)
    }

    /// Forgets idle IPs (called periodically so the table does not grow without bound).
    pub(crate) fn forget_idle(&self) {
        self.limiters.load().per_ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_ip_is_cut_while_another_ip_passes() {
        let limits =
            LocalLimits::new(&LimitSettings { global_per_sec: 1_000, per_ip_per_sec: 3, ..Default::default() });
        let flooding: IpAddr = [10, 0, 0, 1].into();
        let passed = (0..10).filter(|_| limits.check(Some(flooding)).is_ok()).count();
        assert_eq!(passed, 3, "the per-IP quota allows a burst of its rate");
        assert!(limits.check(Some([10, 0, 0, 2].into())).is_ok());
        assert!(limits.check(Some(flooding)).unwrap_err() >= 1);
    }

    #[test]
    fn a_changed_rate_takes_effect_at_once_and_an_unchanged_one_keeps_its_state() {
        let limits = LocalLimits::new(&LimitSettings { global_per_sec: 5, per_ip_per_sec: 2, ..Default::default() });
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert_eq!((0..10).filter(|_| limits.check(Some(ip)).is_ok()).count(), 2);
        limits.set(5, 100);
        let other: IpAddr = [10, 0, 0, 2].into();
        let passed = (0..10).filter(|_| limits.check(Some(other)).is_ok()).count();
        assert_eq!(passed, 3, "the global limiter kept the 2 it let in: 3 of its 5 are left");
        limits.set(1_000, 100);
        assert_eq!((0..50).filter(|_| limits.check(Some(ip)).is_ok()).count(), 50, "a fresh global limiter");
    }

    #[test]
    fn a_flooding_ip_does_not_use_up_the_global_allowance() {
        let limits = LocalLimits::new(&LimitSettings { global_per_sec: 10, per_ip_per_sec: 3, ..Default::default() });
        let flooding: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..1000 {
            let _ = limits.check(Some(flooding));
        }
        let others = (2..=8u8).filter(|n| limits.check(Some([10, 0, 0, *n].into())).is_ok()).count();
        assert_eq!(others, 7, "only the flood's first 3 count against the global 10");
    }
}
