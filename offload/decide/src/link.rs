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
        self.on_transfer_weighted(up_bytes, down_bytes, net_us, 0.0);
    }

    /// An RTT sample weighted `w` (at least the usual alpha): for a probe of an idle path,
    /// whose older estimate is stale.
    pub fn on_rtt_weighted(&mut self, rtt_us: f64, w: f64) {
        self.rtt_us.update_weighted(rtt_us, w);
    }

    /// [`Self::on_transfer`] with the sample weighted `w` (at least the usual alpha).
    pub fn on_transfer_weighted(&mut self, up_bytes: u32, down_bytes: u32, net_us: f64, w: f64) {
        if !(net_us.is_finite() && net_us >= 0.0) || up_bytes == 0 && down_bytes == 0 {
            return;
        }
        let (u, d) = (f64::from(up_bytes), f64::from(down_bytes));
        let transfer = (net_us - self.rtt_us.mean()).max(0.05 * net_us).max(1.0);
        let t_up = u * self.up_pace.mean();
        let t_down = d * self.down_pace.mean();
        let predicted = t_up + t_down;
        if predicted <= 0.0 {
            let pace = transfer / (u + d);
            self.up_pace.update_weighted(pace, w);
            self.down_pace.update_weighted(pace, w);
            return;
        }
        let f = transfer / predicted;
        // A direction that carried almost nothing says almost nothing about its pace.
        if t_up > 0.05 * predicted {
            self.up_pace.update_weighted(self.up_pace.mean() * f, w);
        }
        if t_down > 0.05 * predicted {
            self.down_pace.update_weighted(self.down_pace.mean() * f, w);
        }
    }
}

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
