//! What the agent counts for its status page, metrics and telemetry: answers per path,
//! fallbacks, deadline misses, recent latencies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ferry_decide::{AnswerKind, Fallback, Ran};

/// How many recent latencies the percentiles are taken over.
const WINDOW: usize = 1024;

/// Counters, cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Stats {
    /// Answers from a local variant.
    pub local: AtomicU64,
    /// Answers from an edge.
    pub edge: AtomicU64,
    /// Requests that got an error answer.
    pub failed: AtomicU64,
    /// Answers that came later than their deadline.
    pub deadline_misses: AtomicU64,
    /// Fallbacks because the edge was busy.
    pub fallback_busy: AtomicU64,
    /// Fallbacks because the edge failed.
    pub fallback_error: AtomicU64,
    /// Fallbacks because the edge did not answer in time.
    pub fallback_timeout: AtomicU64,
    /// Fallbacks started because the deadline was at risk.
    pub fallback_at_risk: AtomicU64,
    /// Requests refused before deciding (bad input, unknown model).
    pub rejected: AtomicU64,
    /// Answered `deadline_exceeded` (shed at once, or at deadline + grace).
    pub deadline_exceeded: AtomicU64,
    /// Answered `busy` (the local queue was full).
    pub busy: AtomicU64,
    /// Answered `superseded` (freshest-frame).
    pub superseded: AtomicU64,
    recent_ms: Mutex<VecDeque<f32>>,
}

/// Latency percentiles over the recent window, ms.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    /// Samples in the window.
    pub count: usize,
    /// Median.
    pub p50_ms: f32,
    /// 95th percentile.
    pub p95_ms: f32,
    /// 99th percentile.
    pub p99_ms: f32,
}

impl Stats {
    /// Records one answered request.
    pub fn record(&self, ran: Ran, ok: bool, fallback: Option<Fallback>, latency_ms: f32, deadline_ms: Option<u32>) {
        let bump = |c: &AtomicU64| {
            c.fetch_add(1, Ordering::Relaxed);
        };
        match (ok, ran) {
            (false, _) | (_, Ran::Nowhere) => bump(&self.failed),
            (true, Ran::Local(_)) => bump(&self.local),
            (true, Ran::Edge(_)) => bump(&self.edge),
        }
        match fallback {
            Some(Fallback::EdgeBusy) => bump(&self.fallback_busy),
            Some(Fallback::EdgeError) => bump(&self.fallback_error),
            Some(Fallback::EdgeTimeout) => bump(&self.fallback_timeout),
            Some(Fallback::DeadlineAtRisk) => bump(&self.fallback_at_risk),
            None => {}
        }
        if deadline_ms.is_some_and(|d| latency_ms > d as f32) {
            bump(&self.deadline_misses);
        }
        let mut recent = self.recent_ms.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == WINDOW {
            recent.pop_front();
        }
        recent.push_back(latency_ms);
    }

    /// Counts an answer's kind (the failures among [`Stats::failed`] that admission gave).
    pub fn record_kind(&self, kind: AnswerKind) {
        let c = match kind {
            AnswerKind::DeadlineExceeded => &self.deadline_exceeded,
            AnswerKind::Busy => &self.busy,
            AnswerKind::Superseded => &self.superseded,
            AnswerKind::Result | AnswerKind::Failed | AnswerKind::Cancelled => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Percentiles of the recent latencies.
    pub fn percentiles(&self) -> Percentiles {
        let mut v: Vec<f32> = self.recent_ms.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(f32::total_cmp);
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles { count: v.len(), p50_ms: at(0.50), p95_ms: at(0.95), p99_ms: at(0.99) }
    }

    /// A counter's value.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_decide::TargetId;

    #[test]
    fn answers_are_counted_per_path_with_fallbacks_and_misses() {
        let s = Stats::default();
        s.record(Ran::Local(TargetId(0)), true, Some(Fallback::EdgeBusy), 30.0, Some(20));
        s.record(Ran::Edge(TargetId(1)), true, None, 10.0, Some(20));
        s.record(Ran::Edge(TargetId(1)), false, None, 5.0, None);
        assert_eq!(Stats::get(&s.local), 1);
        assert_eq!(Stats::get(&s.edge), 1);
        assert_eq!(Stats::get(&s.failed), 1);
        assert_eq!(Stats::get(&s.fallback_busy), 1);
        assert_eq!(Stats::get(&s.deadline_misses), 1);
        let p = s.percentiles();
        assert_eq!((p.count, p.p50_ms, p.p99_ms), (3, 10.0, 30.0));
    }
}
