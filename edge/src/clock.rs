//! Clocks: the edge never judges a request by the device's clock. A request's budget
//! (`deadline_ms`, counted by the device from its `sent_at`) runs on the edge's monotonic
//! clock from the moment the request arrives: [`expiry`]. The device subtracts its one-way
//! estimate before sending, so a board without RTC or NTP, hours behind or ahead, is served
//! like any other. The difference between the device's `sent_at` and the edge's wall clock at
//! receipt is still worth seeing, so [`SkewMonitor`] reports it: stats and a rate-limited
//! warning, never a refusal.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ferry_protocol::DeviceId;

use crate::stats::{RateLimit, Stats};

/// A skew beyond this (ms, either way) is counted and warned about. The one-way delay is
/// part of what is measured, so this is well above any sane network's.
pub const SKEW_REPORTED_MS: u64 = 2_000;

/// When a request received at `received` with budget `deadline_ms` expires (edge clock).
pub fn expiry(received: Instant, deadline_ms: Option<u32>) -> Option<Instant> {
    deadline_ms.map(|ms| received + Duration::from_millis(u64::from(ms)))
}

/// Watches the devices' clocks against the edge's.
#[derive(Debug)]
pub struct SkewMonitor {
    warn: RateLimit,
}

impl Default for SkewMonitor {
    fn default() -> Self {
        SkewMonitor {
            warn: RateLimit::every_secs(60),
        }
    }
}

impl SkewMonitor {
    /// Records one request: sent at `sent_at_us` by the device's clock, received at
    /// `received_at_us` by the edge's (both µs since the epoch). Returns the skew, ms.
    pub fn observe(
        &self,
        stats: &Stats,
        device: DeviceId,
        sent_at_us: u64,
        received_at_us: u64,
    ) -> i64 {
        let skew_us = i128::from(received_at_us) - i128::from(sent_at_us);
        let skew_ms =
            i64::try_from(skew_us / 1000).unwrap_or(if skew_us < 0 { i64::MIN } else { i64::MAX });
        stats.clock_skew_last_ms.store(skew_ms, Ordering::Relaxed);
        let abs = skew_ms.unsigned_abs();
        stats.clock_skew_max_ms.fetch_max(abs, Ordering::Relaxed);
        if abs > SKEW_REPORTED_MS {
            let n = Stats::bump(&stats.clock_skewed);
            if let Some(suppressed) = self.warn.allow() {
                tracing::warn!(
                    %device, skew_ms, clock_skewed_total = n, suppressed,
                    "device clock differs from the edge's (edge receipt minus device sent_at, one-way delay included); \
                     deadlines are counted from receipt on the edge's clock, so requests are still served"
                );
            }
        }
        skew_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_US: u64 = 3_600_000_000;

    #[test]
    fn the_budget_runs_from_receipt_whatever_the_device_clock_says() {
        let t = Instant::now();
        assert_eq!(expiry(t, Some(500)), Some(t + Duration::from_millis(500)));
        assert_eq!(expiry(t, None), None);
    }

    #[test]
    fn skew_is_reported_both_ways_and_only_beyond_the_threshold() {
        let stats = Stats::default();
        let m = SkewMonitor::default();
        let dev = DeviceId::new("dev-1").unwrap();
        let now = 1_800_000_000_000_000;
        assert_eq!(m.observe(&stats, dev, now - 30_000, now), 30);
        assert_eq!(stats.snapshot().clock_skewed, 0);
        assert_eq!(m.observe(&stats, dev, now - 3 * HOUR_US, now), 10_800_000);
        assert_eq!(m.observe(&stats, dev, now + 3 * HOUR_US, now), -10_800_000);
        let s = stats.snapshot();
        assert_eq!(
            (s.clock_skewed, s.clock_skew_last_ms, s.clock_skew_max_ms),
            (2, -10_800_000, 10_800_000)
        );
        // A device clock at zero (never set) is just a large skew.
        assert!(m.observe(&stats, dev, 0, now) > 0);
    }
}
