//! In-process limits: a global rate and a per-IP rate (governor's GCRA, lock-free).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::settings::LimitSettings;

/// The local limits of this gateway process.
#[derive(Debug)]
pub(crate) struct LocalLimits {
    global: DefaultDirectRateLimiter,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(per_sec: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN))
}

impl LocalLimits {
    /// Limits from settings.
    pub(crate) fn new(settings: &LimitSettings) -> LocalLimits {
        LocalLimits {
            global: RateLimiter::direct(quota(settings.global_per_sec)),
            per_ip: RateLimiter::keyed(quota(settings.per_ip_per_sec)),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` if a request from `ip` may proceed, else the seconds to wait.
    pub(crate) fn check(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let wait = |not_until: governor::NotUntil<governor::clock::QuantaInstant>| {
            not_until.wait_time_from(self.clock.now()).as_secs() + 1
        };
        // Per IP first: one flooding client is turned away before it uses up everyone's share
        // of the global allowance.
        if let Some(ip) = ip {
            self.per_ip.check_key(&ip).map_err(wait)?;
        }
        self.global.check().map_err(wait)
    }

    /// Forgets idle IPs (called periodically so the table does not grow without bound).
    pub(crate) fn forget_idle(&self) {
        self.per_ip.retain_recent();
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
