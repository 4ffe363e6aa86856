//! The edge's counters: cheap atomics, logged at shutdown and readable by tests in-process;
//! and [`RateLimit`], which keeps a warning that can repeat per request to a few a minute.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters of what the server did with what it received.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received on a request topic.
    pub received: AtomicU64,
    /// Requests answered with a result.
    pub answered_ok: AtomicU64,
    /// Requests answered "busy": the queue was full and the device held its share, another
    /// device within its share took the place of one already queued, or the server was
    /// stopping.
    pub busy: AtomicU64,
    /// Of [`Stats::busy`]: requests already queued that made room for a device within its
    /// share.
    pub busy_evicted: AtomicU64,
    /// Of [`Stats::busy`]: requests answered busy because the server was stopping.
    pub busy_stopping: AtomicU64,
    /// Requests answered with an error status (malformed, too large, unknown model, …).
    pub answered_error: AtomicU64,
    /// Of [`Stats::answered_error`]: requests whose budget ran out in the queue.
    pub expired: AtomicU64,
    /// Probes (model [`ferry_protocol::PROBE_MODEL`]) answered: not errors.
    pub probes: AtomicU64,
    /// Messages dropped because no device could be told (logged).
    pub dropped: AtomicU64,
    /// Answers encoded but never handed to the broker (no room for them, or the server
    /// stopped before it could send them); the devices' timeouts cover these requests.
    pub answers_lost: AtomicU64,
    /// Requests whose device clock differs from the edge's by more than
    /// [`crate::clock::SKEW_REPORTED_MS`] (send time against receipt). Reported only: the
    /// edge counts deadlines from receipt on its own clock.
    pub clock_skewed: AtomicU64,
    /// The last request's skew, ms: the edge's wall clock at receipt minus the device's
    /// `sent_at` (positive: the device's clock is behind, plus the one-way delay).
    pub clock_skew_last_ms: AtomicI64,
    /// The largest skew seen, in absolute value, ms.
    pub clock_skew_max_ms: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// See [`Stats::received`].
    pub received: u64,
    /// See [`Stats::answered_ok`].
    pub answered_ok: u64,
    /// See [`Stats::busy`].
    pub busy: u64,
    /// See [`Stats::busy_evicted`].
    pub busy_evicted: u64,
    /// See [`Stats::busy_stopping`].
    pub busy_stopping: u64,
    /// See [`Stats::answered_error`].
    pub answered_error: u64,
    /// See [`Stats::expired`].
    pub expired: u64,
    /// See [`Stats::probes`].
    pub probes: u64,
    /// See [`Stats::dropped`].
    pub dropped: u64,
    /// See [`Stats::answers_lost`].
    pub answers_lost: u64,
    /// See [`Stats::clock_skewed`].
    pub clock_skewed: u64,
    /// See [`Stats::clock_skew_last_ms`].
    pub clock_skew_last_ms: i64,
    /// See [`Stats::clock_skew_max_ms`].
    pub clock_skew_max_ms: u64,
}

impl Stats {
    /// Adds one to a counter and returns the new value.
    pub fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            received: get(&self.received),
            answered_ok: get(&self.answered_ok),
            busy: get(&self.busy),
            busy_evicted: get(&self.busy_evicted),
            busy_stopping: get(&self.busy_stopping),
            answered_error: get(&self.answered_error),
            expired: get(&self.expired),
            probes: get(&self.probes),
            dropped: get(&self.dropped),
            answers_lost: get(&self.answers_lost),
            clock_skewed: get(&self.clock_skewed),
            clock_skew_last_ms: self.clock_skew_last_ms.load(Ordering::Relaxed),
            clock_skew_max_ms: get(&self.clock_skew_max_ms),
        }
    }
}

/// Lets a repeated warning through at most once per period, counting what it held back.
#[derive(Debug)]
pub struct RateLimit {
    every: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// At most one warning every `secs` seconds.
    pub fn every_secs(secs: u64) -> Self {
        RateLimit {
            every: Duration::from_secs(secs),
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Some(warnings held back since the last one let through) if this one may be logged.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    /// [`RateLimit::allow`] at `now`.
    pub fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(t) if now.saturating_duration_since(t) < self.every => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_lets_one_through_per_period_and_counts_the_rest() {
        let limit = RateLimit::every_secs(10);
        let t0 = Instant::now();
        assert_eq!(limit.allow_at(t0), Some(0));
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(10)), Some(2));
    }
}
