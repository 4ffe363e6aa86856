//! The local queue's rules, one copy for the agent's gate (`ferry-exec`) and the simulator:
//! its bound, and the order in which waiting runs start.
//!
//! Order: shortest first with aging. A waiting run's key is its enqueue time plus
//! `aging_factor` × its predicted compute; the least key starts next (then the earliest
//! queued). The key is fixed when the run is queued, so a run of cost `c` queued at `t` is
//! passed only by runs queued before `t + aging_factor·c`: a stream of small requests delays an
//! image run by at most `aging_factor` × its own cost (plus the runs queued before it).

/// The order key of a run queued at `enqueued_us` with predicted compute `cost_us`.
pub fn order_key(enqueued_us: u64, cost_us: f64, aging_factor: f64) -> u64 {
    let aged = (cost_us.max(0.0) * aging_factor.max(0.0)).min(u64::MAX as f64 / 2.0) as u64;
    enqueued_us.saturating_add(aged)
}

/// Whether a new run must be refused: it would wait (a run holds the runner, or others
/// wait) and `waiting` runs, at most `max` allowed, already do.
pub fn is_full(waiting: usize, running: bool, max: u16) -> bool {
    (running || waiting > 0) && waiting >= usize::from(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_passes_a_long_one_only_within_the_aging_bound() {
        let (image, digits, f) = (40_000.0, 50.0, 4.0);
        let image_key = order_key(0, image, f);
        // Queued 100 ms after the image run: a digits run still goes first...
        assert!(order_key(100_000, digits, f) < image_key);
        // ...but not once the image run has waited 4 × 40 ms.
        assert!(order_key(160_000, digits, f) > image_key);
        // Factor 0: first come, first served.
        assert!(order_key(1, digits, 0.0) > order_key(0, image, 0.0));
        assert_eq!(order_key(u64::MAX, f64::INFINITY, f), u64::MAX);
    }

    #[test]
    fn the_bound_counts_waiting_runs() {
        assert!(!is_full(7, true, 8));
        assert!(is_full(8, true, 8));
        assert!(is_full(0, true, 0));
        // An idle runner takes the run at once, whatever the bound.
        assert!(!is_full(0, false, 0));
    }
}
