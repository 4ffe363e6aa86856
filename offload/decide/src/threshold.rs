//! The seed design's rule, kept for comparison: offload when local demand exceeds 80 % of
//! capacity or the uplink is faster than 5 Mbit/s.

use super::policy::{first_by_priority, Choice, Context, Policy, Why};

/// The threshold rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Threshold;

impl Policy for Threshold {
    fn name(&self) -> &'static str {
        "threshold"
    }
    fn choose(&mut self, ctx: &Context<'_>) -> (Choice, Why) {
        let local = first_by_priority(ctx, true);
        let edge = first_by_priority(ctx, false);
        let (Some(l), Some(e)) = (local, edge) else {
            return match (local, edge) {
                (Some(l), None) => (Choice::Local(l), Why::Unavailable),
                (None, Some(e)) => (Choice::Offload(e), Why::Unavailable),
                _ => (Choice::Nowhere, Why::NoTarget),
            };
        };
        let est = ctx.estimators;
        // Demand over capacity: the CPU share other processes take (the drivers' CPU probe)
        // plus the share our own requests would take if all ran here (their local compute
        // time under the present load, over the time between requests).
        let demand = est.system.cpu_load + est.own_demand();
        // Bandwidth: the live uplink estimate (passive from offloads, active from probes).
        if demand > ctx.config.threshold_demand {
            return (Choice::Offload(e), Why::DemandAboveThreshold);
        }
        if est.edge(e).link.up_mbps() > ctx.config.threshold_mbps {
            return (Choice::Offload(e), Why::BandwidthAboveThreshold);
        }
        (Choice::Local(l), Why::BelowThresholds)
    }
}
