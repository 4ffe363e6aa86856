//! The static baselines: `always-local` and `always-offload`.

use super::policy::{first_by_priority, Choice, Context, Policy, Why};

/// Always the first local target by priority; an edge only if nothing local serves the model.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysLocal;

impl Policy for AlwaysLocal {
    fn name(&self) -> &'static str {
        "always-local"
    }
    fn choose(&mut self, ctx: &Context<'_>) -> (Choice, Why) {
        match (first_by_priority(ctx, true), first_by_priority(ctx, false)) {
            (Some(l), _) => (Choice::Local(l), Why::Fixed),
            (None, Some(e)) => (Choice::Offload(e), Why::Unavailable),
            (None, None) => (Choice::Nowhere, Why::NoTarget),
        }
    }
}

/// Always the first edge by priority; local when no edge is available.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOffload;

impl Policy for AlwaysOffload {
    fn name(&self) -> &'static str {
        "always-offload"
    }
    fn choose(&mut self, ctx: &Context<'_>) -> (Choice, Why) {
        match (first_by_priority(ctx, false), first_by_priority(ctx, true)) {
            (Some(e), _) => (Choice::Offload(e), Why::Fixed),
            (None, Some(l)) => (Choice::Local(l), Why::Unavailable),
            (None, None) => (Choice::Nowhere, Why::NoTarget),
        }
    }
}
