//! An exponentially weighted mean with variance: the building block of every estimator.

/// EWMA of a quantity with its exponentially weighted variance (West's incremental form).
///
/// Plain `Copy` data: reading it is two loads, no lock, no allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    mean: f64,
    var: f64,
    samples: u32,
    alpha: f64,
}

impl Ewma {
    /// Empty, weighting each new sample by `alpha` (0 < alpha <= 1).
    pub const fn new(alpha: f64) -> Ewma {
        Ewma { mean: 0.0, var: 0.0, samples: 0, alpha }
    }

    /// Starts from a prior guess with a given standard deviation; the prior counts as no sample.
    pub fn with_prior(alpha: f64, mean: f64, std: f64) -> Ewma {
        Ewma { mean, var: std * std, samples: 0, alpha }
    }

    /// Adds a sample. Non-finite samples are ignored (a sensor glitch must not poison it).
    pub fn update(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.samples == 0 {
            // The first measurement replaces the prior; the prior's spread stays as a guess
            // of the variance until samples say otherwise.
            self.mean = x;
        } else {
            let diff = x - self.mean;
            let incr = self.alpha * diff;
            self.mean += incr;
            self.var = (1.0 - self.alpha) * (self.var + diff * incr);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// Adds a sample with weight `w` instead of the usual alpha (clamped to `[alpha, 1]`): for
    /// readings that state the present directly (an edge reporting its own queue) rather than
    /// one noisy draw of it.
    pub fn update_weighted(&mut self, x: f64, w: f64) {
        let alpha = self.alpha;
        self.alpha = if w.is_finite() { w.clamp(alpha, 1.0) } else { alpha };
        self.update(x);
        self.alpha = alpha;
    }

    /// The mean (the prior while there are no samples).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The variance.
    pub fn var(&self) -> f64 {
        self.var.max(0.0)
    }

    /// The standard deviation.
    pub fn std(&self) -> f64 {
        self.var().sqrt()
    }

    /// mean + k·σ.
    pub fn quantile(&self, k: f64) -> f64 {
        self.mean + k * self.std()
    }

    /// Samples seen (saturating).
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// Starts over from one sample `mean` with spread `std`: when the quantity has changed so
    /// much that averaging the old estimate in would only delay the new one. Counts as one
    /// sample, so the next update is averaged in at alpha.
    pub fn restart(&mut self, mean: f64, std: f64) {
        if !(mean.is_finite() && std.is_finite()) {
            return;
        }
        self.mean = mean;
        self.var = std * std;
        self.samples = 1;
    }

    /// Widens the spread, e.g. when the estimate has gone stale.
    pub fn inflate_var(&mut self, extra_var: f64) {
        if extra_var.is_finite() && extra_var > 0.0 {
            self.var += extra_var;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_input_converges_with_zero_variance() {
        let mut e = Ewma::new(0.2);
        for _ in 0..100 {
            e.update(40.0);
        }
        assert!((e.mean() - 40.0).abs() < 1e-9);
        assert!(e.var() < 1e-9);
    }

    #[test]
    fn alternating_input_has_the_right_spread() {
        let mut e = Ewma::new(0.05);
        for i in 0..2000 {
            e.update(if i % 2 == 0 { 30.0 } else { 50.0 });
        }
        assert!((e.mean() - 40.0).abs() < 1.0, "{}", e.mean());
        // The population std of ±10 is 10.
        assert!((e.std() - 10.0).abs() < 1.0, "{}", e.std());
    }

    #[test]
    fn step_change_is_tracked() {
        let mut e = Ewma::new(0.2);
        for _ in 0..50 {
            e.update(10.0);
        }
        for _ in 0..30 {
            e.update(100.0);
        }
        assert!(e.mean() > 99.0);
    }

    #[test]
    fn a_weighted_update_moves_further_and_keeps_alpha() {
        let mut slow = Ewma::new(0.2);
        let mut fast = Ewma::new(0.2);
        for _ in 0..20 {
            slow.update(200.0);
            fast.update(200.0);
        }
        slow.update(0.0);
        fast.update_weighted(0.0, 0.6);
        assert!((slow.mean() - 160.0).abs() < 1e-6);
        assert!((fast.mean() - 80.0).abs() < 1e-6);
        fast.update(0.0);
        assert!((fast.mean() - 64.0).abs() < 1e-6);
    }

    #[test]
    fn a_restart_replaces_the_estimate_and_the_next_sample_is_averaged() {
        let mut e = Ewma::new(0.2);
        for _ in 0..50 {
            e.update(20.0);
        }
        e.restart(0.1, 0.05);
        assert_eq!(e.mean(), 0.1);
        assert!((e.std() - 0.05).abs() < 1e-12);
        e.update(0.2);
        assert!((e.mean() - 0.12).abs() < 1e-12);
        e.restart(f64::NAN, 1.0);
        assert!((e.mean() - 0.12).abs() < 1e-12);
    }

    #[test]
    fn non_finite_samples_are_ignored() {
        let mut e = Ewma::with_prior(0.2, 5.0, 1.0);
        e.update(f64::NAN);
        e.update(f64::INFINITY);
        assert_eq!(e.samples(), 0);
        assert_eq!(e.mean(), 5.0);
    }
}
