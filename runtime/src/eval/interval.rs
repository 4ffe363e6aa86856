//! A measured proportion (hits out of trials) and its 95 % Wilson score interval: unlike the
//! normal approximation it stays inside [0, 1] and is honest near 0 % and 100 %, where a
//! variant's agreement with its reference lives.

/// `hits` out of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Proportion {
    /// Trials that counted.
    pub hits: u32,
    /// Trials.
    pub n: u32,
}

/// The standard normal quantile of 97.5 %: a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

impl Proportion {
    /// One more trial.
    pub fn record(&mut self, hit: bool) {
        self.n = self.n.saturating_add(1);
        if hit {
            self.hits = self.hits.saturating_add(1);
        }
    }

    /// The share in percent (0 with no trials).
    pub fn percent(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            100.0 * f64::from(self.hits) / f64::from(self.n)
        }
    }

    /// The 95 % Wilson score interval, in percent: `(low, high)`; `(0, 100)` with no trials.
    pub fn wilson95(&self) -> (f64, f64) {
        if self.n == 0 {
            return (0.0, 100.0);
        }
        let n = f64::from(self.n);
        let p = f64::from(self.hits) / n;
        let z2 = Z95 * Z95;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        // At 0 or n hits the bound is exactly 0 or 1; computed, it is off by a rounding error.
        let low = if self.hits == 0 { 0.0 } else { 100.0 * (centre - half).max(0.0) };
        let high = if self.hits == self.n { 100.0 } else { 100.0 * (centre + half).min(1.0) };
        (low, high)
    }

    /// `"87.4 % [84.2, 90.0] (437/500)"`.
    pub fn describe(&self) -> String {
        let (lo, hi) = self.wilson95();
        format!("{:.1} % [{lo:.1}, {hi:.1}] ({}/{})", self.percent(), self.hits, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 → 0.2553–0.3662.
        let (lo, hi) = Proportion { hits: 81, n: 263 }.wilson95();
        assert!((lo - 25.53).abs() < 0.01 && (hi - 36.62).abs() < 0.01, "{lo} {hi}");
        // All hits: the interval still has width, below 100 %.
        let (lo, hi) = Proportion { hits: 10, n: 10 }.wilson95();
        assert!((lo - 72.25).abs() < 0.01 && hi == 100.0, "{lo} {hi}");
        let (lo, hi) = Proportion { hits: 0, n: 0 }.wilson95();
        assert_eq!((lo, hi), (0.0, 100.0));
    }

    #[test]
    fn ten_images_cannot_tell_three_from_forty_percent() {
        // The manifest's old figure: 6 of 10 agree. Its interval holds 97 % disagreement-free
        // models and coin flips alike.
        let (lo, hi) = Proportion { hits: 6, n: 10 }.wilson95();
        assert!(lo < 35.0 && hi > 80.0, "{lo} {hi}");
    }
}
