//! What the demo measured, request by request, and what it is compared with: the figures per
//! policy, and two hindsight references computed from the same measurements. No I/O here.
//!
//! A *slot* is one request position in the scenario: (round, phase, request number in the
//! phase). In every round each policy is sent the same requests (same images, same spacing)
//! under the same link shape and CPU load, so every slot holds one measurement per policy.

use std::collections::BTreeMap;

use serde::Serialize;

use super::scenario::{is_static, ADAPTIVE};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// Ran on the board.
    Local,
    /// Ran on the edge.
    Edge,
    /// No result (an error answer).
    Failed,
}

impl Path {
    /// The table's mark: L, E or x.
    pub fn mark(self) -> char {
        match self {
            Path::Local => 'L',
            Path::Edge => 'E',
            Path::Failed => 'x',
        }
    }
}

/// One request and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Round, 0-based.
    pub round: u32,
    /// The policy's place in this round's order, 0-based.
    pub place: u32,
    /// The policy.
    pub policy: &'static str,
    /// Index into the scenario's phases.
    pub phase: usize,
    /// Request number within the phase, 0-based.
    pub slot: u32,
    /// When it was submitted, ms after its phase began.
    pub sent_ms: f64,
    /// From submitting to the answer, as the application sees it, ms.
    pub latency_ms: f64,
    /// Where the answer came from.
    pub path: Path,
    /// Whether the request fell back from the edge to local.
    pub fallback: bool,
    /// Whether the answer came later than the deadline.
    pub missed: bool,
    /// The request id the answer carries.
    pub request_id: u64,
}

/// A slot's key: (round, phase, request number).
pub type SlotKey = (u32, usize, u32);

impl RequestRecord {
    /// Its slot.
    pub fn key(&self) -> SlotKey {
        (self.round, self.phase, self.slot)
    }
}

/// One slot's hindsight best: the lowest latency any policy measured in it with a result.
#[derive(Debug, Clone, Serialize)]
pub struct SlotBest {
    /// Round, 0-based.
    pub round: u32,
    /// Phase index.
    pub phase: usize,
    /// Request number within the phase.
    pub slot: u32,
    /// The lowest measured latency, ms.
    pub best_ms: f64,
    /// The policy that measured it.
    pub policy: &'static str,
}

/// Per slot, the best answer any policy actually got in it (failed answers are not candidates).
/// A slot where every policy failed has no entry.
pub fn per_slot_best(records: &[RequestRecord]) -> Vec<SlotBest> {
    let mut best: BTreeMap<SlotKey, (f64, &'static str)> = BTreeMap::new();
    for r in records.iter().filter(|r| r.path != Path::Failed) {
        let e = best.entry(r.key()).or_insert((r.latency_ms, r.policy));
        if r.latency_ms < e.0 {
            *e = (r.latency_ms, r.policy);
        }
    }
    best.into_iter()
        .map(|((round, phase, slot), (best_ms, policy))| SlotBest {
            round,
            phase,
            slot,
            best_ms,
            policy,
        })
        .collect()
}

/// Per (round, phase), the lower of the static policies' phase means, ms.
pub fn best_static_per_phase(records: &[RequestRecord]) -> BTreeMap<(u32, usize), f64> {
    let mut sums: BTreeMap<(u32, usize, &'static str), (f64, u32)> = BTreeMap::new();
    for r in records.iter().filter(|r| is_static(r.policy)) {
        let e = sums.entry((r.round, r.phase, r.policy)).or_insert((0.0, 0));
        *e = (e.0 + r.latency_ms, e.1 + 1);
    }
    let mut best: BTreeMap<(u32, usize), f64> = BTreeMap::new();
    for ((round, phase, _), (sum, n)) in sums {
        let mean = sum / f64::from(n.max(1));
        let e = best.entry((round, phase)).or_insert(mean);
        *e = e.min(mean);
    }
    best
}

/// For one policy's requests in one (round, phase), in the order they were sent: when (ms into
/// the phase) the first request was sent from which every later one in the phase ran on the
/// edge. `None` when the phase's last request did not run on the edge.
pub fn on_edge_from(phase_records: &[&RequestRecord]) -> Option<f64> {
    let tail = phase_records
        .iter()
        .rev()
        .take_while(|r| r.path == Path::Edge)
        .count();
    if tail == 0 {
        return None;
    }
    phase_records
        .get(phase_records.len() - tail)
        .map(|r| r.sent_ms)
}

/// One policy's figures over a set of requests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Requests.
    pub requests: u32,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
    /// Answers from local.
    pub local: u32,
    /// Answers from the edge.
    pub edge: u32,
    /// Error answers.
    pub failed: u32,
    /// Fallbacks from the edge to local.
    pub fallbacks: u32,
    /// Answers later than the deadline.
    pub misses: u32,
}

impl Figures {
    /// The figures of `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> Self {
        let mut f = Figures::default();
        let mut lat = Vec::new();
        for r in records {
            lat.push(r.latency_ms);
            match r.path {
                Path::Local => f.local += 1,
                Path::Edge => f.edge += 1,
                Path::Failed => f.failed += 1,
            }
            f.fallbacks += u32::from(r.fallback);
            f.misses += u32::from(r.missed);
        }
        f.requests = lat.len() as u32;
        f.mean_ms = mean(&lat);
        lat.sort_by(f64::total_cmp);
        f.p95_ms = lat
            .get(((lat.len() as f64 * 0.95).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0);
        f
    }
}

/// The comparison the summary states.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Each policy's figures over every round, in the scenario's policy order.
    pub policies: Vec<(&'static str, Figures)>,
    /// The static policy with the lower overall mean.
    pub better_static: &'static str,
    /// Its mean, ms.
    pub better_static_ms: f64,
    /// Mean over every (round, phase) of the lower static phase mean, ms.
    pub best_static_per_phase_ms: f64,
    /// Mean over every slot of the slot's best measured latency, ms.
    pub per_slot_best_ms: f64,
    /// Slots where no policy got a result (left out of the per-slot best).
    pub slots_without_result: u32,
    /// Adaptive's mean, ms.
    pub adaptive_ms: f64,
    /// Per round: adaptive's mean over the better static policy's mean in that round.
    pub per_round_vs_better_static: Vec<f64>,
}

impl Comparison {
    /// Computes it from every record.
    pub fn of(records: &[RequestRecord], policies: &[&'static str], rounds: u32) -> Self {
        let figures: Vec<(&'static str, Figures)> = policies
            .iter()
            .map(|&p| (p, Figures::of(records.iter().filter(|r| r.policy == p))))
            .collect();
        let (better_static, better_static_ms) = figures
            .iter()
            .filter(|(p, _)| is_static(p))
            .map(|(p, f)| (*p, f.mean_ms))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(("-", f64::NAN));
        let adaptive_ms = figures
            .iter()
            .find(|(p, _)| *p == ADAPTIVE)
            .map_or(f64::NAN, |(_, f)| f.mean_ms);
        let per_phase: Vec<f64> = best_static_per_phase(records).into_values().collect();
        let best = per_slot_best(records);
        let slots: std::collections::BTreeSet<SlotKey> =
            records.iter().map(RequestRecord::key).collect();
        let per_round_vs_better_static = (0..rounds)
            .map(|round| {
                let m = |p: &str| {
                    mean(
                        &records
                            .iter()
                            .filter(|r| r.round == round && r.policy == p)
                            .map(|r| r.latency_ms)
                            .collect::<Vec<_>>(),
                    )
                };
                let better = policies
                    .iter()
                    .filter(|p| is_static(p))
                    .map(|p| m(p))
                    .fold(f64::INFINITY, f64::min);
                m(ADAPTIVE) / better
            })
            .collect();
        Comparison {
            policies: figures,
            better_static,
            better_static_ms,
            best_static_per_phase_ms: mean(&per_phase),
            per_slot_best_ms: mean(&best.iter().map(|b| b.best_ms).collect::<Vec<_>>()),
            slots_without_result: (slots.len() - best.len()) as u32,
            adaptive_ms,
            per_round_vs_better_static,
        }
    }
}

/// The mean of `v` (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        round: u32,
        policy: &'static str,
        phase: usize,
        slot: u32,
        latency_ms: f64,
        path: Path,
    ) -> RequestRecord {
        RequestRecord {
            round,
            place: 0,
            policy,
            phase,
            slot,
            sent_ms: f64::from(slot) * 200.0,
            latency_ms,
            path,
            fallback: false,
            missed: false,
            request_id: 0,
        }
    }

    fn sample() -> Vec<RequestRecord> {
        vec![
            rec(0, "adaptive", 0, 0, 100.0, Path::Edge),
            rec(0, "always-local", 0, 0, 300.0, Path::Local),
            rec(0, "always-offload", 0, 0, 90.0, Path::Edge),
            rec(0, "adaptive", 0, 1, 80.0, Path::Edge),
            rec(0, "always-local", 0, 1, 310.0, Path::Local),
            rec(0, "always-offload", 0, 1, 20.0, Path::Failed),
            rec(0, "adaptive", 1, 0, 320.0, Path::Local),
            rec(0, "always-local", 1, 0, 300.0, Path::Local),
            rec(0, "always-offload", 1, 0, 500.0, Path::Edge),
        ]
    }

    #[test]
    fn the_per_slot_best_is_the_lowest_result_in_the_slot_and_never_a_failure() {
        let best = per_slot_best(&sample());
        let got: Vec<(usize, u32, f64, &str)> = best
            .iter()
            .map(|b| (b.phase, b.slot, b.best_ms, b.policy))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 90.0, "always-offload"),
                (0, 1, 80.0, "adaptive"),
                (1, 0, 300.0, "always-local")
            ]
        );
    }

    #[test]
    fn the_best_static_per_phase_takes_the_lower_static_phase_mean() {
        let b = best_static_per_phase(&sample());
        // Phase 0: local (300 + 310) / 2 = 305, offload (90 + 20) / 2 = 55; phase 1: 300 vs 500.
        assert_eq!(b.get(&(0, 0)), Some(&55.0));
        assert_eq!(b.get(&(0, 1)), Some(&300.0));
    }

    #[test]
    fn the_comparison_names_the_better_static_policy_and_both_references() {
        let c = Comparison::of(
            &sample(),
            &["adaptive", "always-local", "always-offload"],
            1,
        );
        assert_eq!(c.better_static, "always-offload");
        assert!((c.better_static_ms - 610.0 / 3.0).abs() < 1e-9);
        assert!((c.adaptive_ms - 500.0 / 3.0).abs() < 1e-9);
        assert!((c.per_slot_best_ms - 470.0 / 3.0).abs() < 1e-9);
        assert!((c.best_static_per_phase_ms - 355.0 / 2.0).abs() < 1e-9);
        assert_eq!(c.slots_without_result, 0);
        assert_eq!(c.per_round_vs_better_static.len(), 1);
        let offload = &c.policies[2].1;
        assert_eq!((offload.requests, offload.edge, offload.failed), (3, 2, 1));
    }

    #[test]
    fn on_edge_from_is_the_send_time_of_the_first_request_of_the_edge_run_that_ends_the_phase() {
        let paths = [Path::Local, Path::Edge, Path::Local, Path::Edge, Path::Edge];
        let recs: Vec<RequestRecord> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| rec(0, "adaptive", 2, i as u32, 100.0, *p))
            .collect();
        let refs: Vec<&RequestRecord> = recs.iter().collect();
        assert_eq!(on_edge_from(&refs), Some(600.0));
        assert_eq!(on_edge_from(&refs[..3]), None);
        assert_eq!(on_edge_from(&refs[1..2]), Some(200.0));
    }
}
