//! The default policy: least predicted cost among paths whose planning quantile meets the
//! deadline (ranked by the quantile when the deadline is tight, `[decide] tight_fraction`, off
//! by default), damped by hysteresis, biased
//! toward the edge by the thermal governor, and hedged when the deadline is at risk.

use super::config::Mode;
use super::cost::{least, PathEstimate};
use super::hysteresis::Hysteresis;
use super::policy::{Choice, Context, Policy, Why};

/// The adaptive policy.
#[derive(Debug, Clone, Default)]
pub struct Adaptive {
    hysteresis: Hysteresis,
}

impl Adaptive {
    /// With no history.
    pub fn new() -> Adaptive {
        Adaptive::default()
    }
}

impl Policy for Adaptive {
    fn name(&self) -> &'static str {
        "adaptive"
    }

    fn choose(&mut self, ctx: &Context<'_>) -> (Choice, Why) {
        let cands = ctx.candidates;
        let cfg = ctx.config;
        let factor = ctx.local_cost_factor as f32;
        let bias = |p: &PathEstimate, x: f32| if p.local { x * factor } else { x };
        let deadline = ctx.request.deadline_us.map(|d| d as f32 / 1e3);
        let feasible = |p: &PathEstimate| deadline.is_none_or(|d| p.quantile_ms <= d);
        let Some(fastest) = least(cands.as_slice().iter(), |p| p.mean_ms) else {
            return (Choice::Nowhere, Why::NoTarget);
        };
        let tight = deadline.is_some_and(|d| fastest.mean_ms > cfg.tight_fraction as f32 * d);
        let rank_by_quantile = tight && ctx.mode == Mode::Latency;
        let key = |p: &PathEstimate| {
            let raw = if rank_by_quantile {
                p.quantile_ms
            } else if ctx.mode == Mode::Energy {
                p.energy_mj
            } else {
                p.mean_ms
            };
            bias(p, raw)
        };
        let none_key = |p: &PathEstimate| bias(p, p.mean_ms);
        let (best, why) = match least(cands.as_slice().iter().filter(|p| feasible(p)), key) {
            Some(p) if rank_by_quantile => (*p, Why::TightDeadline),
            Some(p) => (*p, Why::Cheapest),
            // No path meets the deadline at its planning quantile: the deadline is likely lost
            // either way, so take the least expected latency. Ranking by the quantile here let a
            // growing local queue win against an edge whose spread (it includes a fallback
            // behind that same queue) grew faster: a runaway on slow boards.
            None => match least(cands.as_slice().iter(), none_key) {
                Some(p) => (*p, Why::NoneMeetsDeadline),
                None => return (Choice::Nowhere, Why::NoTarget),
            },
        };
        let best_ok = feasible(&best);
        let margin_abs = if ctx.mode == Mode::Latency { cfg.hysteresis_ms as f32 } else { 0.0 };
        // Hysteresis weighs the previous path by the same measure that picked the best one:
        // with no path meeting the deadline that is the expected latency, not the quantile.
        let hold_key: &dyn Fn(&PathEstimate) -> f32 = if why == Why::NoneMeetsDeadline { &none_key } else { &key };
        let (chosen, held) = self.hysteresis.apply(
            ctx.request.model,
            best,
            cands,
            hold_key,
            |prev| !best_ok || feasible(prev),
            cfg.hysteresis_margin as f32,
            margin_abs,
        );
        let why = if held { Why::Hysteresis } else { why };

        if cfg.hedge {
            if let Some(d) = deadline {
                // At risk: the plan's quantile misses the deadline, but the other kind of path
                // could still make it.
                if chosen.quantile_ms > d {
                    let other = if chosen.local { cands.best_edge() } else { cands.best_local() };
                    if let Some(o) = other.filter(|o| o.mean_ms <= d) {
                        let (edge, local) = if chosen.local { (o.id(), chosen.id()) } else { (chosen.id(), o.id()) };
                        return (Choice::Hedge { edge, local }, Why::AtRisk);
                    }
                }
            }
        }
        if chosen.local {
            (Choice::Local(chosen.id()), why)
        } else {
            (Choice::Offload(chosen.id()), why)
        }
    }
}
