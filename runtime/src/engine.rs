//! The engine seam: what Ferry needs from an inference engine, so that another engine can be
//! added as a feature beside tract without touching the callers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

    /// Loads part of a model (a split's head or tail, [`crate::split`]): one input of a fixed
    /// shape, one output of a known length.
    fn load_part(&self, part: &Part) -> Result<Box<dyn Session>, RuntimeError>;
}

/// A model file that is part of a model, with what it takes and gives.
#[derive(Debug, Clone)]
pub struct Part {
    /// The ONNX file.
    pub path: std::path::PathBuf,
    /// Its one input's shape.
    pub input_shape: Vec<usize>,
    /// How many values its one output holds.
    pub output_len: usize,
    /// What to call it in errors and logs (`efficientnet-lite0 split@42 head`).
    pub label: String,
}

/// A loaded model, ready to run; shared between threads.
pub trait Session: Send + Sync {
    /// Runs each input (already shaped and normalised, `manifest.input.shape`) and returns the
    /// model's raw output scores for each, with the compute time it took.
    fn run_batch(&self, inputs: &[&[f32]]) -> Result<Vec<RawOutput>, RuntimeError>;

    /// Runs one input, giving up with [`RuntimeError::Cancelled`] as soon as `cancel` is set.
    /// tract checks before every node of the plan; an engine that cannot stop mid-run should
    /// at least check before and after.
    fn run_cancellable(&self, input: &[f32], cancel: &Cancel) -> Result<RawOutput, RuntimeError>;
}

/// A request to stop a running inference, shared between whoever runs it and whoever may
/// give up on it (the agent's executor, when the edge answered first). Cheap to check: one
/// atomic load.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    /// How many times it was consulted, and after how many checks it reports cancelled on
    /// its own (`u64::MAX`: never) — a deterministic way to stop a run part-way in tests.
    checks: Arc<AtomicU64>,
    after: u64,
}

impl Cancel {
    /// A token nobody has cancelled yet.
    pub fn new() -> Cancel {
        Cancel::from_flag(Arc::new(AtomicBool::new(false)))
    }

    /// A token over an existing flag (set = cancelled).
    pub fn from_flag(flag: Arc<AtomicBool>) -> Cancel {
        Cancel { flag, checks: Arc::new(AtomicU64::new(0)), after: u64::MAX }
    }

    /// A token that cancels itself at its `n`-th check: for tests that stop a run part-way
    /// without racing a clock.
    pub fn after_checks(n: u64) -> Cancel {
        Cancel { after: n, ..Cancel::new() }
    }

    /// Asks the run to stop.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
    }

    /// Whether the run should stop (counts as one check).
    pub fn is_cancelled(&self) -> bool {
        let n = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        n >= self.after || self.flag.load(Ordering::Acquire)
    }

    /// `Err(Cancelled)` if the run should stop.
    pub fn check(&self) -> Result<(), RuntimeError> {
        if self.is_cancelled() { Err(RuntimeError::Cancelled) } else { Ok(()) }
    }

    /// How many times the token was checked so far.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
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
