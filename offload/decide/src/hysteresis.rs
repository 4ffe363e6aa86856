//! Hysteresis: stay on the current path unless another is better by a margin, so that two
//! paths with near-equal predictions do not make the agent flap between them.

use super::config::MAX_MODELS;
use super::cost::{Candidates, PathEstimate};
use super::targets::{ModelId, TargetId};

/// The last choice per model.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Hysteresis {
    last: [Option<TargetId>; MAX_MODELS],
}

impl Hysteresis {
    /// No history.
    pub fn new() -> Hysteresis {
        Hysteresis::default()
    }

    /// Given the freshly best path, returns the path to take: the previous one if it is still
    /// a candidate, still acceptable (`ok`), and `best` does not beat it by `margin` (relative)
    /// and `margin_abs` (absolute, in key units). Remembers the result.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        model: ModelId,
        best: PathEstimate,
        candidates: &Candidates,
        key: impl Fn(&PathEstimate) -> f32,
        ok: impl Fn(&PathEstimate) -> bool,
        margin: f32,
        margin_abs: f32,
    ) -> (PathEstimate, bool) {
        let slot = model.index() % MAX_MODELS;
        let held = self.last[slot]
            .filter(|&prev| prev != best.id())
            .and_then(|prev| candidates.get(prev))
            .filter(|prev| ok(prev))
            .filter(|prev| key(&best) >= key(prev) * (1.0 - margin) - margin_abs)
            .copied();
        let out = held.unwrap_or(best);
        self.last[slot] = Some(out.id());
        (out, held.is_some())
    }

    /// Forgets the history of a model (e.g. after an override).
    pub fn set(&mut self, model: ModelId, target: TargetId) {
        self.last[model.index() % MAX_MODELS] = Some(target);
    }
}
