//! The edge's counters: cheap atomics, logged at shutdown and readable by tests in-process.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what the server did with what it received.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received on a request topic.
    pub received: AtomicU64,
    /// Requests answered with a result.
    pub answered_ok: AtomicU64,
    /// Requests answered "busy" because the queue was full.
    pub busy: AtomicU64,
    /// Requests answered with an error status (malformed, too large, unknown model, …).
    pub answered_error: AtomicU64,
    /// Probes (model [`ferry_protocol::PROBE_MODEL`]) answered: not errors.
    pub probes: AtomicU64,
    /// Messages dropped because no device could be told (logged).
    pub dropped: AtomicU64,
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
    /// See [`Stats::answered_error`].
    pub answered_error: u64,
    /// See [`Stats::probes`].
    pub probes: u64,
    /// See [`Stats::dropped`].
    pub dropped: u64,
}

impl Stats {
    /// Adds one to a counter and returns the new value.
    pub fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            received: self.received.load(Ordering::Relaxed),
            answered_ok: self.answered_ok.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            answered_error: self.answered_error.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}
