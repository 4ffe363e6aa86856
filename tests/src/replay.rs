//! A recorded link replayed on the netns testbed: a window of a recording
//! (`ferry_decide::sim::recorded`, the simulator's own parser and sampling) applied to the
//! device's uplink as `tbf` rates, one a second, and the questions a test asks of it
//! afterwards (how long the capacity had held on one side of a threshold when a request was
//! sent).

use std::time::{Duration, Instant};

use ferry_decide::sim::recorded;

use crate::harness::repo_root;
use crate::netns::{Side, Testbed};

/// The capacity of `path` (relative to the repository) for `secs` seconds from `from_s`, one
/// value (Mbit/s, the mean over the second) per second: what the simulator samples too.
pub fn window(path: &str, from_s: usize, secs: usize) -> Vec<f64> {
    let recording = recorded::load(&repo_root().join(path), None).unwrap_or_else(|e| panic!("{path}: {e}"));
    recording.sample(1_000_000, from_s + secs)[from_s..].to_vec()
}

/// Re-shapes the device's uplink to each capacity in turn, one a second from `start`;
/// returns when each was applied (s since `t0`) with its capacity, Mbit/s.
pub fn replay(tb: &Testbed, t0: Instant, start: Instant, mbps: &[f64]) -> Vec<(f64, f64)> {
    let mut applied = Vec::with_capacity(mbps.len());
    for (i, &m) in mbps.iter().enumerate() {
        let at = start + Duration::from_secs(i as u64);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let kbit = (m * 1000.0).round().max(8.0) as u32;
        tb.shape(Side::Device, kbit).unwrap_or_else(|e| panic!("replay step {i}: {e}"));
        applied.push((t0.elapsed().as_secs_f64(), m));
    }
    applied
}

/// How long before `t` the capacity has been on the same side of a threshold, judged with
/// `side` (true for "on that side"), s; 0 if it is not at `t`.
pub fn held_for(steps: &[(f64, f64)], t: f64, side: impl Fn(f64) -> bool) -> f64 {
    let Some(now) = steps.iter().rposition(|&(at, _)| at <= t) else { return 0.0 };
    if !side(steps[now].1) {
        return 0.0;
    }
    let first = steps[..=now].iter().rposition(|&(_, m)| !side(m)).map_or(0, |i| i + 1);
    t - steps[first].0
}

/// The capacity applied at `t` (s since the replay's `t0`), Mbit/s; `None` before the first
/// step.
pub fn capacity_at(steps: &[(f64, f64)], t: f64) -> Option<f64> {
    steps.iter().rfind(|&&(at, _)| at <= t).map(|&(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_for_counts_from_the_last_crossing() {
        let steps = [(0.0, 5.0), (1.0, 0.2), (2.0, 0.3), (3.0, 4.0)];
        assert_eq!(held_for(&steps, 2.5, |m| m <= 0.35), 1.5);
        assert_eq!(held_for(&steps, 3.5, |m| m <= 0.35), 0.0);
        assert_eq!(held_for(&steps, 0.5, |m| m >= 4.0), 0.5);
        assert_eq!(held_for(&steps, -1.0, |m| m >= 4.0), 0.0);
        assert_eq!(capacity_at(&steps, 2.5), Some(0.3));
        assert_eq!(capacity_at(&steps, -0.1), None);
    }

    #[test]
    fn the_window_starts_at_its_second_of_the_recording() {
        const PATH: &str = "tests/traces/recorded/hsdpa-bus.ljansbakken-oslo-2010-09-28_1407.log";
        let whole = recorded::load(&repo_root().join(PATH), None).unwrap().sample(1_000_000, 210);
        let w = window(PATH, 205, 3);
        assert_eq!(w, whole[205..208].to_vec());
        // The recording jumps from ~0.2 to ~4 Mbit/s at 205–207 s.
        assert!(w[0] < 1.0 && w[2] > 3.5, "{w:?}");
    }
}
