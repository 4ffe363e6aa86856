//! A connection that went silent: publishes wait for their PUBACK while nothing at all comes
//! from the broker. TCP alone notices a cut link only after its retransmissions give up (tens
//! of seconds to minutes), and MQTT's keep-alive ping is not sent while publishes keep the
//! connection busy, so an offloader publishing once a second over a cut link would wait that
//! long. [`AckWatch`] says when to give the connection up: a publish has waited `limit` for
//! its acknowledgement and nothing was received in that time either.

use std::time::{Duration, Instant};

/// The device offloader's view of its connection's liveness.
#[derive(Debug, Clone)]
pub struct AckWatch {
    limit: Duration,
    /// Publishes written and not acknowledged.
    unacked: usize,
    /// Since when the oldest of them waits (reset by anything received).
    waiting_since: Option<Instant>,
}

impl AckWatch {
    /// A watch that gives a connection up after `limit` of silence with publishes waiting.
    pub fn new(limit: Duration) -> Self {
        AckWatch { limit, unacked: 0, waiting_since: None }
    }

    /// A publish was written at `now`.
    pub fn on_sent(&mut self, now: Instant) {
        self.unacked += 1;
        self.waiting_since.get_or_insert(now);
    }

    /// A PUBACK came at `now`.
    pub fn on_ack(&mut self, now: Instant) {
        self.unacked = self.unacked.saturating_sub(1);
        self.on_received(now);
    }

    /// Something came from the broker at `now`: the connection is alive.
    pub fn on_received(&mut self, now: Instant) {
        self.waiting_since = (self.unacked > 0).then_some(now);
    }

    /// The connection ended or was given up: nothing waits on it any more.
    pub fn reset(&mut self) {
        self.unacked = 0;
        self.waiting_since = None;
    }

    /// When the connection is to be given up if nothing comes before (`None`: nothing waits).
    pub fn deadline(&self) -> Option<Instant> {
        self.waiting_since.map(|t| t + self.limit)
    }

    /// Whether it is to be given up at `now`.
    pub fn is_dead(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn a_publish_unacknowledged_in_silence_for_the_limit_gives_the_connection_up() {
        let t0 = Instant::now();
        let mut w = AckWatch::new(LIMIT);
        assert!(!w.is_dead(t0 + LIMIT * 10), "nothing waits: never dead");
        w.on_sent(t0);
        // Publishing more does not move the oldest one's clock.
        w.on_sent(t0 + Duration::from_secs(10));
        assert!(!w.is_dead(t0 + Duration::from_secs(29)));
        assert!(w.is_dead(t0 + LIMIT));
        assert_eq!(w.deadline(), Some(t0 + LIMIT));
    }

    #[test]
    fn anything_received_proves_the_connection_alive() {
        let t0 = Instant::now();
        let mut w = AckWatch::new(LIMIT);
        w.on_sent(t0);
        w.on_sent(t0);
        w.on_received(t0 + Duration::from_secs(20));
        assert!(!w.is_dead(t0 + Duration::from_secs(40)));
        assert!(w.is_dead(t0 + Duration::from_secs(50)));
        // Both acknowledged: nothing waits.
        w.on_ack(t0 + Duration::from_secs(21));
        w.on_ack(t0 + Duration::from_secs(22));
        assert_eq!(w.deadline(), None);
        w.on_sent(t0 + Duration::from_secs(60));
        w.reset();
        assert_eq!(w.deadline(), None);
    }
}
