//! Emulating a slower board on a fast machine (`[agent] emulate_slowdown`): the board's own
//! compute — local runs, and making an offload's form (decoding, resizing, JPEG encoding, a
//! split's head) — takes this many times as long as it really computes. One rule for every
//! place that computes on the board, so that an emulated board is slower at all of it, not at
//! local runs only (which would make shaped and split offloads look cheaper than on the board
//! they stand in for).

use std::time::{Duration, Instant};

/// The factor, 1.0 (a real board: nothing is stretched) or more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slowdown(f64);

impl Slowdown {
    /// `factor`, clamped to at least 1 (a NaN is 1).
    pub fn new(factor: f64) -> Self {
        Self(if factor > 1.0 { factor } else { 1.0 })
    }

    /// Whether anything is stretched.
    pub fn is_on(self) -> bool {
        self.0 > 1.0
    }

    /// How long `computed` takes on the emulated board.
    pub fn stretch(self, computed: Duration) -> Duration {
        computed.mul_f64(self.0)
    }

    /// What the emulated board adds to `computed`.
    pub fn extra(self, computed: Duration) -> Duration {
        computed.mul_f64(self.0 - 1.0)
    }

    /// Runs `work` on this thread and then holds it for the extra time the emulated board
    /// would take (for blocking work that cannot be stopped part-way: it is short).
    pub fn run_blocking<T>(self, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = work();
        if self.is_on() {
            std::thread::sleep(self.extra(started.elapsed()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_factor_below_one_or_nan_stretches_nothing() {
        for f in [0.5, 1.0, f64::NAN, -3.0] {
            let s = Slowdown::new(f);
            assert!(!s.is_on());
            assert_eq!(s.stretch(Duration::from_millis(10)), Duration::from_millis(10));
            assert_eq!(s.extra(Duration::from_millis(10)), Duration::ZERO);
        }
    }

    #[test]
    fn blocking_work_is_held_for_the_extra_time() {
        let s = Slowdown::new(3.0);
        assert_eq!(s.stretch(Duration::from_millis(10)), Duration::from_millis(30));
        let started = Instant::now();
        let v = s.run_blocking(|| {
            std::thread::sleep(Duration::from_millis(20));
            7
        });
        assert_eq!(v, 7);
        // 20 ms of work and 40 ms held: at least 60 ms in all (a lower bound; sleeping only
        // ever takes longer).
        assert!(started.elapsed() >= Duration::from_millis(60), "{:?}", started.elapsed());
    }
}
