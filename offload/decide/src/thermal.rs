//! Thermal governor: a PI controller on SoC temperature whose output (0..=1) makes local paths
//! look dearer, so work shifts to the edge as the board nears its throttle point and comes
//! back as it cools.

use super::config::ThermalConfig;

/// The PI controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThermalGovernor {
    set_point_c: f64,
    kp: f64,
    ki: f64,
    max_penalty: f64,
    integral: f64,
    last_us: Option<u64>,
    output: f64,
}

impl ThermalGovernor {
    /// From the `[thermal]` section.
    pub fn new(cfg: &ThermalConfig) -> ThermalGovernor {
        ThermalGovernor {
            set_point_c: cfg.set_point_c,
            kp: cfg.kp.max(0.0),
            ki: cfg.ki.max(0.0),
            max_penalty: cfg.max_local_penalty.max(0.0),
            integral: 0.0,
            last_us: None,
            output: 0.0,
        }
    }

    /// Feeds one temperature reading at `now_us`; returns the new output.
    pub fn update(&mut self, temp_c: f64, now_us: u64) -> f64 {
        if !temp_c.is_finite() {
            return self.output;
        }
        let dt = self.last_us.map_or(0.0, |t| now_us.saturating_sub(t) as f64 / 1e6).min(10.0);
        self.last_us = Some(now_us);
        let error = temp_c - self.set_point_c;
        let p = self.kp * error;
        let candidate = self.integral + error * dt;
        // Anti-windup: the integral never goes below zero (cool is not "credit") and stops
        // growing once the output is saturated.
        let unsaturated = p + self.ki * candidate < 1.0 || error < 0.0;
        if unsaturated {
            self.integral = candidate.max(0.0);
        }
        if self.ki > 0.0 {
            self.integral = self.integral.min(1.0 / self.ki);
        }
        self.output = (p + self.ki * self.integral).clamp(0.0, 1.0);
        self.output
    }

    /// Current output, 0 (cool) ..= 1 (at or past the throttle point for a while).
    pub fn output(&self) -> f64 {
        self.output
    }

    /// Multiplier on local paths' cost.
    pub fn local_cost_factor(&self) -> f64 {
        1.0 + self.output * self.max_penalty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThermalConfig {
        ThermalConfig { zone: String::new(), throttle_point_c: 85.0, set_point_c: 75.0, kp: 0.1, ki: 0.01, max_local_penalty: 3.0 }
    }

    #[test]
    fn below_the_set_point_the_governor_is_idle() {
        let mut g = ThermalGovernor::new(&cfg());
        for i in 0..100 {
            g.update(60.0, i * 1_000_000);
        }
        assert_eq!(g.output(), 0.0);
        assert_eq!(g.local_cost_factor(), 1.0);
    }

    #[test]
    fn output_rises_toward_the_throttle_point_and_falls_when_cool() {
        let mut g = ThermalGovernor::new(&cfg());
        g.update(78.0, 0);
        let warm = g.update(78.0, 1_000_000);
        let mut t = 1_000_000;
        let mut hot = 0.0;
        for _ in 0..30 {
            t += 1_000_000;
            hot = g.update(84.0, t);
        }
        assert!(warm > 0.0 && hot > warm, "{warm} {hot}");
        assert!(hot <= 1.0);
        // The integral keeps pushing at a constant error: output grows over time.
        let mut cool = 1.0;
        for _ in 0..60 {
            t += 1_000_000;
            cool = g.update(65.0, t);
        }
        assert_eq!(cool, 0.0);
    }

    #[test]
    fn the_integral_removes_steady_state_error() {
        let mut g = ThermalGovernor::new(&cfg());
        let first = g.update(77.0, 0);
        let mut last = first;
        for i in 1..50 {
            last = g.update(77.0, i * 1_000_000);
        }
        assert!(last > first + 0.3, "{first} {last}");
    }

    #[test]
    fn windup_is_bounded() {
        let mut g = ThermalGovernor::new(&cfg());
        for i in 0..10_000 {
            g.update(95.0, i * 1_000_000);
        }
        // After a long overheat, cooling below the set point releases it within seconds.
        let mut t = 10_000 * 1_000_000;
        let mut out = 1.0;
        for _ in 0..15 {
            t += 1_000_000;
            out = g.update(70.0, t);
        }
        assert_eq!(out, 0.0);
    }
}
