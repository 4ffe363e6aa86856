//! The tract engine (tract-onnx): models are optimized once at load, and each worker reuses a
//! spawned state across requests, since a plain `run()` re-plans on every call. Quantized (QDQ)
//! models go through [`crate::quant`] first, so that their quantized ops run on integer kernels.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ferry_hal::Precision;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::engine::{Cancel, Engine, Part, RawOutput, Session, Threads};
use crate::error::RuntimeError;
use crate::manifest::Manifest;
use crate::quant;

/// The tract engine.
#[derive(Debug, Clone, Default)]
pub struct TractEngine {
    threads: Threads,
}

impl TractEngine {
    /// An engine whose matrix products use `threads` threads (1 = the calling thread only).
    pub fn new(threads: Threads) -> Self {
        Self { threads: Threads(threads.0.max(1)) }
    }
}

impl Engine for TractEngine {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn load(&self, manifest: &Manifest, precision: Precision) -> Result<Box<dyn Session>, RuntimeError> {
        let path = manifest.model_path(precision)?;
        let plan = load_plan(manifest, &path, self.threads)?;
        Ok(Box::new(TractSession::new(plan, manifest.input.shape.clone(), manifest.name.clone(), precision)))
    }

    fn load_part(&self, part: &Part) -> Result<Box<dyn Session>, RuntimeError> {
        let path = &part.path;
        let model = open_model(path)?;
        let plan = optimize(model, &part.input_shape, path, self.threads, |shape| {
            let len: usize = shape.iter().product();
            (len == part.output_len).then_some(()).ok_or_else(|| format!("{}: output shape {shape:?}, expected {} values", part.label, part.output_len))
        })?;
        Ok(Box::new(TractSession::new(plan, part.input_shape.clone(), part.label.clone(), Precision::Fp32)))
    }
}

/// Reads an ONNX file into tract.
fn open_model(path: &Path) -> Result<InferenceModel, RuntimeError> {
    if !path.is_file() {
        return Err(RuntimeError::ModelFile { path: path.to_path_buf(), message: "no such file".to_string() });
    }
    tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| RuntimeError::ModelFile { path: path.to_path_buf(), message: format!("{e:#}") })
}

fn load_plan(manifest: &Manifest, path: &Path, threads: Threads) -> Result<Arc<TypedSimplePlan>, RuntimeError> {
    let file_err = |e: TractError| RuntimeError::ModelFile { path: path.to_path_buf(), message: format!("{e:#}") };
    let mismatch = |message: String| RuntimeError::ManifestMismatch { path: path.to_path_buf(), message };
    let model = open_model(path)?;

    let inputs = model.input_outlets().map_err(file_err)?;
    if inputs.len() != 1 {
        return Err(mismatch(format!("the model has {} inputs, the manifest describes one", inputs.len())));
    }
    let input_name = &model.node(inputs[0].node).name;
    if *input_name != manifest.input.name {
        return Err(mismatch(format!("input is named `{input_name}`, the manifest says `{}`", manifest.input.name)));
    }
    check_declared_shape(&model, &manifest.input.shape).map_err(mismatch)?;
    let classes = manifest.output.classes;
    optimize(model, &manifest.input.shape, path, threads, |shape| {
        (shape.iter().product::<usize>() == classes).then_some(()).ok_or_else(|| format!("output shape {shape:?}, the manifest says {classes} classes"))
    })
}

/// Types and optimizes a loaded model at `input_shape` (integer kernels for QDQ ops), checks
/// its output shape with `check_output`, and makes the runnable plan.
fn optimize(
    model: InferenceModel,
    input_shape: &[usize],
    path: &Path,
    threads: Threads,
    check_output: impl Fn(&[usize]) -> Result<(), String>,
) -> Result<Arc<TypedSimplePlan>, RuntimeError> {
    let file_err = |e: TractError| RuntimeError::ModelFile { path: path.to_path_buf(), message: format!("{e:#}") };
    let mismatch = |message: String| RuntimeError::ManifestMismatch { path: path.to_path_buf(), message };
    let model = model
        .with_input_fact(0, f32::fact(input_shape.to_vec()).into())
        .and_then(|m| m.into_typed())
        .map_err(|e| mismatch(format!("{e:#}")))?;
    let model = integer_kernels(model, path).into_optimized().map_err(|e| mismatch(format!("{e:#}")))?;
    let out_shape = model.output_fact(0).ok().and_then(|f| f.shape.as_concrete().map(<[usize]>::to_vec));
    match out_shape {
        Some(s) => check_output(&s).map_err(mismatch)?,
        None => return Err(mismatch("the output shape is not fixed at this input shape".to_string())),
    }
    let mut options = RunOptions::default();
    if threads.0 > 1 {
        options.executor = Some(tract_linalg::multithread::Executor::multithread(threads.0));
    }
    model.into_runnable_with_options(&options).map_err(file_err)
}

/// Runs the quantized ops of a QDQ model on integer kernels ([`crate::quant`]); a model without
/// any (a float one) comes back as it was, and so does one the rewrite fails on, with a warning:
/// tract's own plan of it is slower but correct.
fn integer_kernels(model: TypedModel, path: &Path) -> TypedModel {
    match quant::integerize(&model) {
        Ok((_, report)) if report.integer.is_empty() => model,
        Ok((rewritten, report)) => {
            tracing::info!(
                model = %path.display(),
                integer_ops = report.integer.len(),
                kept_float = report.kept_float.len(),
                "quantized ops run on integer kernels"
            );
            for why in &report.kept_float {
                tracing::debug!(model = %path.display(), "kept in floating point: {why}");
            }
            rewritten
        }
        Err(e) => {
            tracing::warn!(model = %path.display(), "integer rewrite failed, running the QDQ graph in floating point: {e}");
            model
        }
    }
}

/// Compares the input shape the ONNX file declares with the manifest's, where the file fixes a dim.
fn check_declared_shape(model: &InferenceModel, expected: &[usize]) -> Result<(), String> {
    let fact = model.input_fact(0).map_err(|e| format!("{e:#}"))?;
    let dims: Vec<Option<usize>> = fact.shape.dims().map(|d| d.concretize().and_then(|d| d.as_i64()).and_then(|d| usize::try_from(d).ok())).collect();
    if dims.is_empty() {
        return Ok(()); // the file leaves the input shape open
    }
    let fits = dims.len() == expected.len() && dims.iter().zip(expected).all(|(d, e)| d.is_none_or(|d| d == *e));
    if fits {
        Ok(())
    } else {
        Err(format!("the model's input shape is {dims:?} (None = free), the manifest says {expected:?}"))
    }
}

/// The error a cancelled run stops with, told apart from the engine's own failures.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Stopped {}

struct TractSession {
    plan: Arc<TypedSimplePlan>,
    /// Spawned states, reused across calls; one per concurrent caller at most.
    states: Mutex<Vec<TypedSimpleState>>,
    shape: Vec<usize>,
    model: String,
    precision: Precision,
}

impl TractSession {
    fn new(plan: Arc<TypedSimplePlan>, shape: Vec<usize>, model: String, precision: Precision) -> TractSession {
        TractSession { plan, states: Mutex::new(Vec::new()), shape, model, precision }
    }

    fn pool(&self) -> MutexGuard<'_, Vec<TypedSimpleState>> {
        // A panic elsewhere cannot leave a half-updated Vec of states: recover it.
        self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fail(&self, e: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Inference { model: self.model.clone(), precision: self.precision, message: e.to_string() }
    }

    fn run_one(&self, state: &mut TypedSimpleState, data: &[f32], cancel: Option<&Cancel>) -> Result<RawOutput, RuntimeError> {
        let start = Instant::now();
        let input = Tensor::from_shape(&self.shape, data).map_err(|e| self.fail(format!("{e:#}")))?;
        let inputs = tvec!(input.into_tvalue());
        let outputs = match cancel {
            None => state.run(inputs),
            // Checked before every node: a cancelled run stops within one node's time.
            Some(c) => state.run_plan_with_eval(inputs, |ctx, op_state, node, values| {
                if c.is_cancelled() {
                    return Err(TractError::new(Stopped));
                }
                tract_onnx::tract_core::plan::eval(ctx, op_state, node, values)
            }),
        };
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) if e.downcast_ref::<Stopped>().is_some() => return Err(RuntimeError::Cancelled),
            Err(e) => return Err(self.fail(format!("{e:#}"))),
        };
        let first = outputs.first().ok_or_else(|| self.fail("the model returned no output"))?;
        let view = first.to_plain_array_view::<f32>().map_err(|e| self.fail(format!("{e:#}")))?;
        let scores: Vec<f32> = view.iter().copied().collect();
        Ok(RawOutput { scores, compute: start.elapsed() })
    }
}

impl TractSession {
    /// Runs `f` on a spawned state from the pool (or a new one). A state that stopped or failed
    /// mid-run may hold partial values: only a clean one goes back.
    fn with_state<T>(&self, f: impl FnOnce(&mut TypedSimpleState) -> Result<T, RuntimeError>) -> Result<T, RuntimeError> {
        let spare = self.pool().pop();
        let mut state = match spare {
            Some(state) => state,
            None => self.plan.spawn().map_err(|e| self.fail(format!("{e:#}")))?,
        };
        let result = f(&mut state);
        if result.is_ok() {
            self.pool().push(state);
        }
        result
    }
}

impl Session for TractSession {
    fn run_batch(&self, inputs: &[&[f32]]) -> Result<Vec<RawOutput>, RuntimeError> {
        self.with_state(|state| inputs.iter().map(|data| self.run_one(state, data, None)).collect())
    }

    fn run_cancellable(&self, input: &[f32], cancel: &Cancel) -> Result<RawOutput, RuntimeError> {
        self.with_state(|state| self.run_one(state, input, Some(cancel)))
    }
}
