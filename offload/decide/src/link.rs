//! Link estimator: RTT and up/down bandwidth to one edge endpoint.
//!
//! Bandwidth is kept as *pace* (µs per byte), because what the decision predicts is time,
//! and an average of paces predicts time without the bias an average of rates has.

use super::ewma::Ewma;

/// RTT and per-direction pace of one link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkEstimator {
    rtt_us: Ewma,
    up_pace: Ewma,
    down_pace: Ewma,
}

/// µs per byte at `mbps` Mbit/s.
pub fn pace_of_mbps(mbps: f64) -> f64 {
    8.0 / mbps.max(1e-6)
}

impl LinkEstimator {
    /// Starts from a guess: 20 ms RTT, 10 Mbit/s each way.
    pub fn new(alpha: f64) -> LinkEstimator {
        let p = pace_of_mbps(10.0);
        LinkEstimator {
            rtt_us: Ewma::with_prior(alpha, 20_000.0, 10_000.0),
            up_pace: Ewma::with_prior(alpha, p, p * 0.5),
            down_pace: Ewma::with_prior(alpha, p, p * 0.5),
        }
    }

    /// Round-trip time.
    pub fn rtt(&self) -> &Ewma {
        &self.rtt_us
    }

    /// Uplink pace, µs/byte.
    pub fn up_pace(&self) -> &Ewma {
        &self.up_pace
    }

    /// Downlink pace, µs/byte.
    pub fn down_pace(&self) -> &Ewma {
        &self.down_pace
    }

    /// Uplink bandwidth estimate, Mbit/s.
    pub fn up_mbps(&self) -> f64 {
        8.0 / self.up_pace.mean().max(1e-9)
    }

    /// Predicted network time (mean, variance) for a transfer, µs.
    pub fn predict(&self, up_bytes: u32, down_bytes: u32) -> (f64, f64) {
        let (u, d) = (f64::from(up_bytes), f64::from(down_bytes));
        let mean = self.rtt_us.mean() + u * self.up_pace.mean() + d * self.down_pace.mean();
        let var = self.rtt_us.var() + u * u * self.up_pace.var() + d * d * self.down_pace.var();
        (mean, var)
    }

    /// An RTT sample from a ping (a probe with no payload).
    pub fn on_rtt(&mut self, rtt_us: f64) {
        self.rtt_us.update(rtt_us);
    }

    /// A transfer of `up_bytes` and `down_bytes` took `net_us` of network time (total minus
    /// the time the edge reported). The RTT estimate is taken off; the rest is split between
    /// the directions in the proportion the current paces predict, so one sample moves both
    /// by the same factor.
    pub fn on_transfer(&mut self, up_bytes: u32, down_bytes: u32, net_us: f64) {
        if let Some(f) = self.ratio(up_bytes, down_bytes, net_us) {
            if f >= COLLAPSE_FACTOR && self.is_change(net_us, f) {
                self.scale(up_bytes, down_bytes, net_us, f, Scale::Restart);
                return;
            }
        }
        self.on_transfer_weighted(up_bytes, down_bytes, net_us, 0.0);
    }

    /// An RTT sample weighted `w` (at least the usual alpha): for a probe of an idle path,
    /// whose older estimate is stale.
    pub fn on_rtt_weighted(&mut self, rtt_us: f64, w: f64) {
        self.rtt_us.update_weighted(rtt_us, w);
    }

    /// [`Self::on_transfer`] with the sample weighted `w` (at least the usual alpha).
    pub fn on_transfer_weighted(&mut self, up_bytes: u32, down_bytes: u32, net_us: f64, w: f64) {
        if let Some(f) = self.ratio(up_bytes, down_bytes, net_us) {
            self.scale(up_bytes, down_bytes, net_us, f, Scale::Average(w));
        }
    }

    /// How many times its predicted transfer time a transfer of `up_bytes` and `down_bytes`
    /// took, `net_us` of network time with the RTT taken off. `None` for a sample that says
    /// nothing (not finite, negative, or nothing moved).
    pub fn ratio(&self, up_bytes: u32, down_bytes: u32, net_us: f64) -> Option<f64> {
        if !(net_us.is_finite() && net_us >= 0.0) || up_bytes == 0 && down_bytes == 0 {
            return None;
        }
        let transfer = self.transfer_part(net_us);
        let predicted = f64::from(up_bytes) * self.up_pace.mean() + f64::from(down_bytes) * self.down_pace.mean();
        Some(if predicted > 0.0 { transfer / predicted } else { f64::INFINITY })
    }

    /// Whether a sample of `net_us`, `f` times its prediction, is a change of the link rather than noise:
    /// [`CHANGE_FACTOR`] or more off, either way, and off by more than the RTT's jitter (a
    /// transfer time is a difference of times that jitter like the RTT) plus [`CHANGE_MIN_US`].
    fn is_change(&self, net_us: f64, f: f64) -> bool {
        let transfer = self.transfer_part(net_us);
        let predicted = if f.is_finite() && f > 0.0 { transfer / f } else { 0.0 };
        let off = (transfer - predicted).abs();
        (f >= CHANGE_FACTOR || f <= 1.0 / CHANGE_FACTOR) && off > 2.0 * self.rtt_us.std() + CHANGE_MIN_US
    }

    /// A probe's payload exchange, on a path that was idle (its estimate is stale): a sample
    /// within [`CHANGE_FACTOR`] of the prediction is averaged in with weight `w`; one further
    /// off means the link has changed since it was last used, and the pace estimate restarts
    /// from the sample (an average of 20 µs/B and 0.08 µs/B is still 8 µs/B after a 0.6-weighted
    /// update: a recovered link would look collapsed for several more probes). Returns
    /// whether it restarted.
    pub fn on_probe_transfer(&mut self, up_bytes: u32, down_bytes: u32, net_us: f64, w: f64) -> bool {
        let Some(f) = self.ratio(up_bytes, down_bytes, net_us) else { return false };
        let restart = self.is_change(net_us, f);
        self.scale(up_bytes, down_bytes, net_us, f, if restart { Scale::Restart } else { Scale::Average(w) });
        restart
    }

    /// A transfer of `up_bytes` and `down_bytes` was still not over after `net_us` of network
    /// time (the other path answered first): a lower bound. At or below the prediction it
    /// says nothing. Above it, it is averaged in as a sample of that time — unless it is a
    /// change ([`Self::is_change`]): then the link is proven at least that slow now and the
    /// estimate restarts from the bound. Returns whether it restarted.
    pub fn on_at_least(&mut self, up_bytes: u32, down_bytes: u32, net_us: f64) -> bool {
        let Some(f) = self.ratio(up_bytes, down_bytes, net_us) else { return false };
        if f <= 1.0 {
            return false;
        }
        let restart = self.is_change(net_us, f);
        self.scale(up_bytes, down_bytes, net_us, f, if restart { Scale::Restart } else { Scale::Average(0.0) });
        restart
    }

    /// A transfer that showed a collapse is still not over after `net_us`: an estimate that
    /// predicts less is raised to it (the link is at least that slow); one that predicts more
    /// is left alone.
    pub fn raise_to(&mut self, up_bytes: u32, down_bytes: u32, net_us: f64) {
        if let Some(f) = self.ratio(up_bytes, down_bytes, net_us).filter(|f| *f > 1.0) {
            self.scale(up_bytes, down_bytes, net_us, f, Scale::Restart);
        }
    }

    /// The part of `net_us` that is transfer, not round trip.
    fn transfer_part(&self, net_us: f64) -> f64 {
        (net_us - self.rtt_us.mean()).max(0.05 * net_us).max(1.0)
    }

    /// Moves the paces by the factor `f` a sample showed. One sample cannot tell which
    /// direction was off: both move by the same factor, except a direction that carried almost
    /// nothing of the predicted time, which says almost nothing about its pace (the 512 bytes
    /// of an answer must not take the blame for 80 KB that crossed a throttled uplink).
    fn scale(&mut self, up_bytes: u32, down_bytes: u32, net_us: f64, f: f64, how: Scale) {
        let (u, d) = (f64::from(up_bytes), f64::from(down_bytes));
        let set = |e: &mut Ewma, x: f64| match how {
            Scale::Average(w) => e.update_weighted(x, w),
            Scale::Restart => e.restart(x, RESTART_REL_STD * x),
        };
        let t_up = u * self.up_pace.mean();
        let t_down = d * self.down_pace.mean();
        let predicted = t_up + t_down;
        if !(predicted > 0.0 && f.is_finite()) {
            let pace = self.transfer_part(net_us) / (u + d);
            set(&mut self.up_pace, pace);
            set(&mut self.down_pace, pace);
            return;
        }
        // A restart moves a direction far: only one that carried a good part of the bytes (by
        // predicted time, a downlink still at its prior could take the blame for a throttled
        // uplink).
        let (up_counts, down_counts) = match how {
            Scale::Restart => (u >= RESTART_SHARE * (u + d), d >= RESTART_SHARE * (u + d)),
            Scale::Average(_) => (t_up > 0.05 * predicted, t_down > 0.05 * predicted),
        };
        if up_counts {
            let x = self.up_pace.mean() * f;
            set(&mut self.up_pace, x);
        }
        if down_counts {
            let x = self.down_pace.mean() * f;
            set(&mut self.down_pace, x);
        }
    }
}

/// How a sample moves the paces.
#[derive(Debug, Clone, Copy)]
enum Scale {
    /// An EWMA update with this weight (at least alpha).
    Average(f64),
    /// A restart from the sample.
    Restart,
}

/// A transfer this many times faster or slower than predicted is a change of the link, not
/// noise (with the RTT jitter test of [`LinkEstimator::is_change`]): 4× separates a throttle
/// or its end (the testbed's 250×) from Wi-Fi's usual swings (the recorded traces move by less
/// than 2× from one second to the next most of the time).
pub const CHANGE_FACTOR: f64 = 4.0;
/// ... and this much off in absolute terms, µs: a millisecond of scheduling noise on a
/// 1-ms transfer is no change of the link.
pub const CHANGE_MIN_US: f64 = 2_000.0;
/// A restart moves only the directions that carried at least this share of the bytes.
const RESTART_SHARE: f64 = 0.25;
/// A real transfer this many times slower than predicted is a collapse: the estimate restarts
/// from it (one a little slower, or faster, is averaged in, so that a link that swings keeps
/// its spread).
pub const COLLAPSE_FACTOR: f64 = 8.0;
/// Spread of a restarted pace, relative to it.
const RESTART_REL_STD: f64 = 0.5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_and_uplink_are_recovered_from_pings_and_transfers() {
        let mut l = LinkEstimator::new(0.2);
        let (rtt, mbps) = (8_000.0, 40.0);
        for _ in 0..50 {
            l.on_rtt(rtt);
            let net = rtt + 150_000.0 * pace_of_mbps(mbps) + 1_000.0 * pace_of_mbps(80.0);
            l.on_transfer(150_000, 1_000, net);
        }
        assert!((l.rtt().mean() - rtt).abs() < 100.0);
        assert!((l.up_mbps() - mbps).abs() / mbps < 0.05, "{}", l.up_mbps());
        let (mean, _) = l.predict(150_000, 1_000);
        assert!((mean - (rtt + 30_000.0 + 100.0)).abs() < 2_000.0, "{mean}");
    }

    #[test]
    fn a_collapse_is_seen_after_one_slow_transfer() {
        let mut l = LinkEstimator::new(0.3);
        for _ in 0..30 {
            l.on_rtt(5_000.0);
            l.on_transfer(150_000, 1_000, 5_000.0 + 150_000.0 * pace_of_mbps(50.0));
        }
        let before = l.predict(150_000, 1_000).0;
        l.on_transfer(150_000, 1_000, 5_000.0 + 150_000.0 * pace_of_mbps(1.0));
        let after = l.predict(150_000, 1_000).0;
        assert!(after > 5.0 * before, "{before} -> {after}");
    }

    #[test]
    fn variable_bandwidth_widens_the_spread() {
        let mut steady = LinkEstimator::new(0.1);
        let mut jumpy = LinkEstimator::new(0.1);
        for i in 0..200 {
            steady.on_transfer(150_000, 1_000, 20_000.0 + 150_000.0 * pace_of_mbps(40.0));
            let mbps = if i % 2 == 0 { 10.0 } else { 80.0 };
            jumpy.on_transfer(150_000, 1_000, 20_000.0 + 150_000.0 * pace_of_mbps(mbps));
        }
        assert!(jumpy.up_pace().var() > 100.0 * steady.up_pace().var());
        assert!(jumpy.predict(150_000, 1_000).1 > steady.predict(150_000, 1_000).1);
    }

    /// A link learned at 400 kbit/s up (80 KB uploads), 2 ms RTT.
    fn throttled() -> LinkEstimator {
        let mut l = LinkEstimator::new(0.2);
        for _ in 0..30 {
            l.on_rtt(2_000.0);
            l.on_transfer(80_000, 512, 2_000.0 + 80_000.0 * pace_of_mbps(0.4));
        }
        l
    }

    #[test]
    fn a_probe_far_faster_than_predicted_restarts_the_estimate_instead_of_averaging_it() {
        let mut l = throttled();
        let down = l.down_pace().mean();
        // One probe across the restored link (100 Mbit/s). Averaged in at 0.6 it would leave
        // 8 µs/B: 640 ms predicted for 80 KB that take 6 ms.
        assert!(l.on_probe_transfer(16_384, 64, 2_000.0 + 16_384.0 * pace_of_mbps(100.0), 0.6));
        let (mean, var) = l.predict(80_000, 512);
        assert!(mean < 20_000.0, "{mean}");
        assert!(mean + 2.0 * var.sqrt() < 40_000.0, "spread {}", var.sqrt());
        // The 64 bytes down carried nothing of the time: the downlink keeps its pace.
        assert_eq!(l.down_pace().mean(), down);
    }

    #[test]
    fn a_probe_close_to_the_prediction_is_averaged() {
        let mut l = throttled();
        assert!(!l.on_probe_transfer(16_384, 64, 2_000.0 + 16_384.0 * pace_of_mbps(0.6), 0.6));
        let mbps = l.up_mbps();
        assert!(mbps > 0.45 && mbps < 0.6, "{mbps}");
    }

    #[test]
    fn a_lower_bound_far_above_the_prediction_restarts_the_estimate_at_the_bound() {
        let mut l = LinkEstimator::new(0.2);
        for _ in 0..30 {
            l.on_rtt(2_000.0);
            l.on_transfer(80_000, 512, 2_000.0 + 80_000.0 * pace_of_mbps(100.0));
        }
        // Overtaken by the local run after 670 ms where ~8 ms were predicted.
        assert!(l.on_at_least(80_000, 512, 670_000.0));
        assert!(l.predict(80_000, 512).0 > 600_000.0, "{}", l.predict(80_000, 512).0);
        // Still out at 1.4 s: raised to that.
        l.raise_to(80_000, 512, 1_400_000.0);
        assert!(l.predict(80_000, 512).0 > 1_350_000.0);
        // A bound the estimate already covers changes nothing, nor one below the prediction.
        let before = l;
        l.raise_to(80_000, 512, 1_000_000.0);
        assert!(!l.on_at_least(80_000, 512, 900_000.0));
        assert_eq!(l, before);
    }

    #[test]
    fn a_lower_bound_a_little_above_the_prediction_is_averaged() {
        let mut l = throttled();
        let before = l.predict(80_000, 512).0;
        assert!(!l.on_at_least(80_000, 512, 2.0 * before));
        let after = l.predict(80_000, 512).0;
        assert!(after > before && after < 1.5 * before, "{before} -> {after}");
    }

    #[test]
    fn a_large_ratio_within_the_rtt_jitter_is_no_change() {
        let mut l = LinkEstimator::new(0.2);
        for i in 0..30 {
            l.on_rtt(if i % 2 == 0 { 2_000.0 } else { 12_000.0 });
            l.on_transfer(16_384, 64, 7_000.0 + 16_384.0 * pace_of_mbps(100.0));
        }
        // 16 KiB predicted at 1.3 ms arrives in 6 ms: 4.6 times slower, but within the RTT's
        // ±5 ms jitter.
        assert!(!l.on_probe_transfer(16_384, 64, 7_000.0 + 6_000.0, 0.6));
    }

    #[test]
    fn garbage_timings_are_ignored() {
        let mut l = LinkEstimator::new(0.2);
        let before = l;
        l.on_transfer(150_000, 1_000, f64::NAN);
        l.on_transfer(150_000, 1_000, -5.0);
        l.on_transfer(0, 0, 100.0);
        assert_eq!(l, before);
    }
}
