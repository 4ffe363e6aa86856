//! Local estimators: compute time per (model, precision), slowdown under load and throttling,
//! and the local queue.

use super::config::MAX_TARGETS;
use super::ewma::Ewma;
use super::targets::TargetId;

/// What the drivers' probes say about the board right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SystemState {
    /// CPU share used by *other* processes, 0..=1 (total busy minus Ferry's own).
    pub cpu_load: f64,
    /// Current over maximum CPU clock, (0, 1]; below 1 when throttled.
    pub freq_ratio: f64,
    /// SoC temperature, °C.
    pub temp_c: f64,
}

impl Default for SystemState {
    fn default() -> Self {
        SystemState { cpu_load: 0.0, freq_ratio: 1.0, temp_c: 40.0 }
    }
}

impl SystemState {
    /// Clamps the inputs into their ranges (sensors lie).
    pub fn sanitized(self) -> SystemState {
        let fin = |x: f64, d: f64| if x.is_finite() { x } else { d };
        SystemState {
            cpu_load: fin(self.cpu_load, 0.0).clamp(0.0, 1.0),
            freq_ratio: fin(self.freq_ratio, 1.0).clamp(0.05, 1.0),
            temp_c: fin(self.temp_c, 40.0),
        }
    }
}

/// How much slower local compute runs under other processes' load:
/// `slowdown = (1 + k·cpu_load) / freq_ratio`, with k learned online.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowdown {
    k: Ewma,
}

impl Slowdown {
    /// Starts with k = 1 (a fully loaded CPU doubles compute time).
    pub fn new(alpha: f64) -> Slowdown {
        Slowdown { k: Ewma::with_prior(alpha, 1.0, 0.5) }
    }

    /// The factor for a system state.
    pub fn factor(&self, s: &SystemState) -> f64 {
        (1.0 + self.k.mean().max(0.0) * s.cpu_load) / s.freq_ratio
    }

    /// The learned k.
    pub fn k(&self) -> f64 {
        self.k.mean()
    }

    /// Learns from one run: `ratio` is measured time over the unloaded, unthrottled estimate.
    /// Only runs under real load say anything about k.
    pub fn update(&mut self, ratio: f64, s: &SystemState) {
        if s.cpu_load >= 0.1 && ratio.is_finite() {
            let unthrottled = ratio * s.freq_ratio;
            self.k.update(((unthrottled - 1.0) / s.cpu_load).clamp(0.0, 20.0));
        }
    }
}

/// Compute time of one local variant, normalized to an idle, unthrottled board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalCompute {
    base_us: Ewma,
}

impl LocalCompute {
    /// Starts from a prior (µs) with a wide spread.
    pub fn new(alpha: f64, prior_us: f64) -> LocalCompute {
        LocalCompute { base_us: Ewma::with_prior(alpha, prior_us, prior_us * 0.5) }
    }

    /// The idle-board estimate.
    pub fn base(&self) -> &Ewma {
        &self.base_us
    }

    /// A run stopped after `ran_us` without finishing: it takes at least that long. Censored:
    /// only a run stopped later than predicted says anything, and then it is learned as if it
    /// had taken that long. Without this, runs that are always cut at their deadline would
    /// never correct an optimistic prior, and the path would keep being chosen.
    pub fn on_ran_at_least(&mut self, ran_us: f64, s: &SystemState, slowdown: &mut Slowdown) {
        if ran_us.is_finite() && ran_us > self.base_us.mean() * slowdown.factor(s) {
            self.update(ran_us, s, slowdown);
        }
    }

    /// Learns from one measured run (compute only, queue excluded) under `s`; teaches
    /// `slowdown` too when the board was loaded.
    pub fn update(&mut self, measured_us: f64, s: &SystemState, slowdown: &mut Slowdown) {
        if !(measured_us.is_finite() && measured_us >= 0.0) {
            return;
        }
        if self.base_us.samples() > 3 {
            slowdown.update(measured_us / self.base_us.mean().max(1.0), s);
        }
        // Loaded runs teach the base only through the current k, so that a wrong k cannot
        // drag the base along far: the base learns mostly from unloaded runs.
        if s.cpu_load < 0.1 || self.base_us.samples() <= 3 {
            self.base_us.update(measured_us / slowdown.factor(s));
        }
    }
}

/// The local runner: one inference at a time; waiting runs start shortest first (by their
/// target's predicted compute; FIFO among equals), so a tiny model's request is not held for
/// seconds behind a queue of image runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LocalQueue {
    /// Start time (µs) and predicted duration (µs) of the running inference.
    pub running: Option<(u64, f64)>,
    /// Requests waiting behind it.
    pub waiting: u16,
    /// Of those, how many per local target (indexed by `TargetId`): a queue of image runs
    /// costs far more than a queue of tiny-model runs.
    waiting_per: [u16; MAX_TARGETS],
}

impl LocalQueue {
    /// A run of `target` joined the queue.
    pub fn queued(&mut self, target: TargetId) {
        self.waiting = self.waiting.saturating_add(1);
        let n = &mut self.waiting_per[target.index() % MAX_TARGETS];
        *n = n.saturating_add(1);
    }

    /// A run of `target` left the queue (started or dropped).
    pub fn left(&mut self, target: TargetId) {
        self.waiting = self.waiting.saturating_sub(1);
        let n = &mut self.waiting_per[target.index() % MAX_TARGETS];
        *n = n.saturating_sub(1);
    }

    /// Predicted wait before a new run costing `own_us` would start: the running inference's
    /// remainder plus every waiting run that goes first — those no longer than it, each at its
    /// own target's predicted compute (`compute_us(target index)`).
    pub fn wait_us(&self, now_us: u64, own_us: f64, compute_us: impl Fn(usize) -> f64) -> f64 {
        let remaining = match self.running {
            Some((since, predicted)) => (predicted - now_us.saturating_sub(since) as f64).max(0.0),
            None => 0.0,
        };
        let mut queued = 0.0;
        for (i, &n) in self.waiting_per.iter().enumerate() {
            if n > 0 {
                let c = compute_us(i);
                if c <= own_us {
                    queued += f64::from(n) * c;
                }
            }
        }
        remaining + queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> SystemState {
        SystemState::default()
    }

    #[test]
    fn compute_time_learns_the_idle_profile() {
        let mut c = LocalCompute::new(0.2, 50_000.0);
        let mut s = Slowdown::new(0.2);
        for i in 0..100 {
            c.update(40_000.0 + if i % 2 == 0 { 2_000.0 } else { -2_000.0 }, &idle(), &mut s);
        }
        assert!((c.base().mean() - 40_000.0).abs() < 1_000.0);
        assert!(c.base().std() > 1_000.0 && c.base().std() < 3_000.0);
    }

    #[test]
    fn runs_stopped_later_than_predicted_raise_the_estimate_and_earlier_ones_do_not() {
        // A 50 ms prior, but every run is cut at 140 ms (its deadline + grace) unfinished.
        let mut c = LocalCompute::new(0.2, 50_000.0);
        let mut s = Slowdown::new(0.2);
        for _ in 0..10 {
            c.on_ran_at_least(140_000.0, &idle(), &mut s);
        }
        assert!(c.base().mean() > 120_000.0, "{}", c.base().mean());
        // A run stopped after 10 ms (answered elsewhere first) says nothing.
        let before = c.base().mean();
        c.on_ran_at_least(10_000.0, &idle(), &mut s);
        assert_eq!(c.base().mean(), before);
    }

    #[test]
    fn slowdown_learns_k_from_loaded_runs() {
        let mut c = LocalCompute::new(0.2, 50_000.0);
        let mut s = Slowdown::new(0.2);
        for _ in 0..20 {
            c.update(40_000.0, &idle(), &mut s);
        }
        // True model: 1 + 1.5·load.
        for i in 0..200 {
            let load = 0.2 + 0.6 * f64::from(i % 4) / 3.0;
            let st = SystemState { cpu_load: load, ..idle() };
            c.update(40_000.0 * (1.0 + 1.5 * load), &st, &mut s);
        }
        assert!((s.k() - 1.5).abs() < 0.1, "k = {}", s.k());
        let loaded = SystemState { cpu_load: 0.8, ..idle() };
        let predicted = c.base().mean() * s.factor(&loaded);
        assert!((predicted - 88_000.0).abs() < 4_000.0, "{predicted}");
    }

    #[test]
    fn throttling_scales_by_the_clock_ratio() {
        let s = Slowdown::new(0.2);
        let hot = SystemState { freq_ratio: 0.5, ..idle() };
        assert!((s.factor(&hot) - 2.0).abs() < 1e-9);
        let mut c = LocalCompute::new(0.2, 50_000.0);
        let mut s = Slowdown::new(0.2);
        for _ in 0..50 {
            c.update(80_000.0, &hot, &mut s);
        }
        assert!((c.base().mean() - 40_000.0).abs() < 500.0);
    }

    #[test]
    fn queue_wait_counts_the_running_remainder_and_the_runs_that_go_first_at_their_own_cost() {
        // Target 0: a 40 ms image model; target 2: a 0.05 ms digits model.
        let cost = |i: usize| if i == 2 { 50.0 } else { 40_000.0 };
        let mut q = LocalQueue { running: Some((1_000, 40_000.0)), ..LocalQueue::default() };
        q.queued(TargetId(0));
        q.queued(TargetId(0));
        q.queued(TargetId(2));
        assert_eq!(q.waiting, 3);
        // An image run waits for the running remainder, both image runs and the digits run.
        assert_eq!(q.wait_us(11_000, 40_000.0, cost), 30_000.0 + 80_000.0 + 50.0);
        // A digits run goes ahead of the image runs: it waits for the remainder and the other
        // digits run only.
        assert_eq!(q.wait_us(11_000, 50.0, cost), 30_000.0 + 50.0);
        q.left(TargetId(2));
        q.left(TargetId(0));
        assert_eq!(q.wait_us(11_000, 40_000.0, cost), 30_000.0 + 40_000.0);
        assert_eq!(LocalQueue::default().wait_us(0, 40_000.0, cost), 0.0);
        // More "left" than "queued" (a lost report) cannot underflow.
        q.left(TargetId(0));
        q.left(TargetId(0));
        assert_eq!((q.waiting, q.wait_us(11_000, 40_000.0, cost)), (0, 30_000.0));
    }

    #[test]
    fn insane_sensor_values_are_clamped() {
        let s = SystemState { cpu_load: 7.0, freq_ratio: 0.0, temp_c: f64::NAN }.sanitized();
        assert_eq!(s.cpu_load, 1.0);
        assert!(s.freq_ratio > 0.0);
        assert_eq!(s.temp_c, 40.0);
    }
}
