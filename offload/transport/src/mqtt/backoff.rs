//! How long to wait between connection attempts: exponential, jittered, bounded, reset only
//! after a connection that lasted.
//!
//! Two clients that reconnect on the same schedule collide again and again (two agents with
//! one identity take the session from each other at every CONNACK): jitter spreads them, the
//! doubling slows them, and resetting only after a *stable* connection keeps a connection
//! that the broker closes at once from resetting the schedule every time (before this rule,
//! two agents with one identity made 154 reconnections in 8 s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::MqttConfig;

/// The shortest delay after the broker handed this client's session to another client
/// (MQTT v5 DISCONNECT 0x8E, "session taken over"): the other client is there now, so
/// retrying at once only takes it back and starts a fight. Capped at the configured maximum.
pub const TAKEOVER_MIN_DELAY: Duration = Duration::from_secs(1);

/// A connection counts as stable (and resets the backoff when it ends) once it has lasted
/// at least this long, or three times the longest delay if that is longer: so a client whose
/// connections live only until a competitor's next attempt (at most the longest delay) never
/// resets.
pub const MIN_STABLE: Duration = Duration::from_secs(30);

/// Exponential backoff between reconnection attempts. The nominal delay is `min`, `2·min`, …
/// up to `max`; each delay actually waited is drawn uniformly between half of it and all of
/// it (so never shorter than half the nominal). It goes back to `min` only after a stable
/// connection ([`Backoff::stable_after`]).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// From the config's reconnect bounds, with a jitter seed of its own (clock, process and
    /// a counter: two clients started together draw different delays).
    pub fn new(config: &MqttConfig) -> Self {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let seed =
            nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self::with_seed(config, seed)
    }

    /// From the config's reconnect bounds, with a given jitter seed (for tests).
    pub fn with_seed(config: &MqttConfig, seed: u64) -> Self {
        let min = Duration::from_millis(config.reconnect_min_ms.max(1));
        let max = Duration::from_millis(config.reconnect_max_ms).max(min);
        Backoff {
            min,
            max,
            next: min,
            rng: seed,
        }
    }

    /// The nominal delay of the next attempt (the one waited is between half of it and it).
    pub fn nominal(&self) -> Duration {
        self.next
    }

    /// The delay to wait now, jittered; doubles the next nominal delay up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = nominal / 2;
        let spread = (nominal - half).as_nanos() as u64;
        let extra = if spread == 0 {
            0
        } else {
            self.random() % (spread + 1)
        };
        half + Duration::from_nanos(extra)
    }

    /// Back to the shortest delay (after a stable connection).
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// Raises the next nominal delay to at least `floor` (capped at the maximum).
    pub fn at_least(&mut self, floor: Duration) {
        self.next = self.next.max(floor.min(self.max));
    }

    /// How long a connection must last to reset the backoff when it ends: the longer of
    /// [`MIN_STABLE`] and three times the longest delay.
    pub fn stable_after(&self) -> Duration {
        (self.max * 3).max(MIN_STABLE)
    }

    /// SplitMix64: enough to spread reconnections, no dependency.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(min_ms: u64, max_ms: u64, seed: u64) -> Backoff {
        let mut c = MqttConfig::new("mqtts://h");
        c.reconnect_min_ms = min_ms;
        c.reconnect_max_ms = max_ms;
        Backoff::with_seed(&c, seed)
    }

    #[test]
    fn the_nominal_delay_doubles_up_to_the_cap_and_resets() {
        let mut b = backoff(100, 350, 1);
        let mut nominal = Vec::new();
        for _ in 0..4 {
            nominal.push(b.nominal().as_millis());
            b.next_delay();
        }
        assert_eq!(nominal, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.nominal().as_millis(), 100);
    }

    #[test]
    fn each_delay_lies_between_half_the_nominal_and_the_nominal() {
        for seed in 0..200 {
            let mut b = backoff(100, 10_000, seed);
            for _ in 0..10 {
                let nominal = b.nominal();
                let d = b.next_delay();
                assert!(
                    d >= nominal / 2 && d <= nominal,
                    "seed {seed}: {d:?} for {nominal:?}"
                );
            }
        }
    }

    #[test]
    fn the_jitter_spreads_two_clients_with_different_seeds() {
        let (mut a, mut b) = (backoff(1000, 30_000, 1), backoff(1000, 30_000, 2));
        let same = (0..8).filter(|_| a.next_delay() == b.next_delay()).count();
        assert!(same < 8, "two seeds drew the same delays");
        let (mut a, mut b) = (
            Backoff::new(&MqttConfig::new("mqtts://h")),
            Backoff::new(&MqttConfig::new("mqtts://h")),
        );
        let same = (0..8).filter(|_| a.next_delay() == b.next_delay()).count();
        assert!(same < 8, "two backoffs made together drew the same delays");
    }

    #[test]
    fn a_floor_raises_the_next_delay_but_not_above_the_cap() {
        let mut b = backoff(100, 10_000, 1);
        b.at_least(TAKEOVER_MIN_DELAY);
        assert_eq!(b.nominal(), TAKEOVER_MIN_DELAY);
        b.next_delay();
        b.at_least(TAKEOVER_MIN_DELAY);
        assert_eq!(
            b.nominal(),
            Duration::from_secs(2),
            "a floor never lowers the delay"
        );
        let mut small = backoff(50, 500, 1);
        small.at_least(TAKEOVER_MIN_DELAY);
        assert_eq!(small.nominal(), Duration::from_millis(500));
    }

    #[test]
    fn stable_means_thirty_seconds_or_three_times_the_cap() {
        assert_eq!(
            backoff(100, 10_000, 1).stable_after(),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff(500, 30_000, 1).stable_after(),
            Duration::from_secs(90)
        );
    }
}
