//! The `Policy` trait and what a decision is: where to run, and why (the predictions compared).

use super::config::{DecideConfig, Mode};
use super::cost::{Candidates, PathEstimate, RequestInfo};
use super::estimators::Estimators;
use super::targets::{FormId, TargetId, Targets};

/// Where to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Run locally on this target.
    Local(TargetId),
    /// Offload to this edge (the scheduler falls back to local if it must).
    Offload(TargetId),
    /// Run both, keep the first answer.
    Hedge {
        /// The edge.
        edge: TargetId,
        /// The local variant.
        local: TargetId,
    },
    /// No target serves this model (the request is answered with an error at once).
    Nowhere,
}

/// Why, in one word; the numbers are in [`Reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Least cost among paths whose quantile meets the deadline (or no deadline).
    Cheapest,
    /// Tight deadline: least planning quantile.
    TightDeadline,
    /// No path's quantile meets the deadline: the one most likely to.
    NoneMeetsDeadline,
    /// A cheaper path exists but not by the hysteresis margin.
    Hysteresis,
    /// The deadline is at risk on the best path: hedged.
    AtRisk,
    /// A static policy's fixed choice.
    Fixed,
    /// Threshold rule: local demand above the threshold.
    DemandAboveThreshold,
    /// Threshold rule: bandwidth above the threshold.
    BandwidthAboveThreshold,
    /// Threshold rule: neither, so local.
    BelowThresholds,
    /// The policy's choice was not available (edge down or full); the best other path.
    Unavailable,
    /// Nothing serves the model.
    NoTarget,
    /// Something serves the model, but not where the request allows (its placement).
    NotAllowed,
    /// Only the local runner could serve it, and its queue is full: answered `busy`.
    LocalQueueFull,
    /// No path expects to answer by the deadline plus the grace: answered
    /// `deadline_exceeded` at once (load shedding).
    DeadlineUnreachable,
}

/// The predictions a decision compared. Small and `Copy`: it travels into the answer and
/// telemetry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    /// Why.
    pub why: Why,
    /// The chosen path's prediction (for a hedge: the edge's).
    pub chosen: Option<PathEstimate>,
    /// The best local prediction.
    pub best_local: Option<PathEstimate>,
    /// The best edge prediction.
    pub best_edge: Option<PathEstimate>,
    /// The deadline, ms.
    pub deadline_ms: Option<f32>,
    /// Thermal governor output 0..=1.
    pub thermal: f32,
}

/// A decision, with what the scheduler needs to carry it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Where.
    pub choice: Choice,
    /// The local target to fall back to, if any.
    pub fallback: Option<TargetId>,
    /// That fallback's planning quantile, µs: the scheduler starts it no later than
    /// deadline minus this.
    pub fallback_local_us: u64,
    /// Nothing runs or waits on the local runner now: racing local costs no other request.
    pub local_idle: bool,
    /// The fallback's expected time is below the chosen edge's planning quantile: a local run
    /// started now could answer first. When it could not, racing it only takes the board.
    pub local_may_win: bool,
    /// The edge's hard timeout, µs.
    pub edge_timeout_us: u64,
    /// The answer is due by this long after the decision, µs (deadline + grace): then the
    /// scheduler answers `deadline_exceeded` and stops every path. `None`: no deadline, or
    /// best effort.
    pub answer_by_us: Option<u64>,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// The form an offload sends the input in: the chosen edge's cheapest
    /// ([`crate::cost`]); the original when nothing is offloaded.
    pub fn form(&self) -> FormId {
        self.reason.chosen.filter(|p| !p.local).map_or(FormId::ORIGINAL, |p| p.form_id())
    }
}

/// What a policy sees.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Now, µs.
    pub now_us: u64,
    /// The request.
    pub request: &'a RequestInfo,
    /// The available paths with their predictions.
    pub candidates: &'a Candidates,
    /// All estimators.
    pub estimators: &'a Estimators,
    /// The targets.
    pub targets: &'a Targets,
    /// `[decide]`.
    pub config: &'a DecideConfig,
    /// The cost to minimise for this request (its own `mode`, else `[decide] mode`).
    pub mode: Mode,
    /// Local cost multiplier from the thermal governor (≥ 1).
    pub local_cost_factor: f64,
}

/// A decision rule. Must not allocate or block: it runs on every request.
pub trait Policy: Send {
    /// Its name in configs and tables.
    fn name(&self) -> &'static str;
    /// Chooses among `ctx.candidates`.
    fn choose(&mut self, ctx: &Context<'_>) -> (Choice, Why);
}

/// The first candidate of a kind by priority (then config order).
pub fn first_by_priority(ctx: &Context<'_>, local: bool) -> Option<TargetId> {
    let mut best: Option<(u8, TargetId)> = None;
    for p in ctx.candidates.as_slice().iter().filter(|p| p.local == local) {
        let prio = ctx.targets.get(p.id()).map_or(u8::MAX, |t| t.priority);
        if best.is_none_or(|(bp, _)| prio < bp) {
            best = Some((prio, p.id()));
        }
    }
    best.map(|(_, id)| id)
}
