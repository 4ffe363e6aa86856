//! The engine seam: what Ferry needs from an inference engine, so that another engine can be
//! added as a feature beside tract without touching the callers.

use std::time::Duration;

use ferry_hal::Precision;

use crate::error::RuntimeError;
use crate::manifest::Manifest;

/// An inference engine: loads a model variant once, into a [`Session`] that runs many times.
pub trait Engine: Send + Sync {
    /// The engine's name, for logs and benchmarks.
    fn name(&self) -> &'static str;

    /// Loads, checks against its manifest, and prepares the `precision` variant of a model.
    fn load(&self, manifest: &Manifest, precision: Precision) -> Result<Box<dyn Session>, RuntimeError>;
}

/// A loaded model, ready to run; shared between threads.
pub trait Session: Send + Sync {
    /// Runs each input (already shaped and normalised, `manifest.input.shape`) and returns the
    /// model's raw output scores for each, with the compute time it took.
    fn run_batch(&self, inputs: &[&[f32]]) -> Result<Vec<RawOutput>, RuntimeError>;
}

/// One input's raw result.
#[derive(Debug, Clone)]
pub struct RawOutput {
    /// The output scores, as the model returned them (logits or probabilities).
    pub scores: Vec<f32>,
    /// The time the engine spent on this input.
    pub compute: Duration,
}

/// How many threads an engine may use for one inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(pub usize);

impl Default for Threads {
    fn default() -> Self {
        Threads(1)
    }
}
