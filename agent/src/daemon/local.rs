//! The local path: the board's model variants on tract, compute moved off the async threads,
//! and stopped part-way when the request no longer needs it. One inference at a time is the
//! executor's gate's rule (shortest first, as the decider's queue model assumes), not this
//! runner's: the gate is the one local queue and measures its wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_decide::targets::TargetKind;
use ferry_decide::{TargetId, Targets};
use ferry_exec::{LocalResult, LocalRunner};
use ferry_protocol::{DType, EdgeTimings, Input, Request, Response, Status, TopK};
use ferry_runtime::{forms, preprocess, Cancel, Engine, Inference, LocalModel, ModelStore, RuntimeError};

use super::emulate::Slowdown;

/// Every local variant the decider knows, loaded once.
pub struct TractRunner {
    /// Indexed by `TargetId`; `None` for edge targets.
    variants: Vec<Option<Arc<LocalModel>>>,
    top_k: usize,
    slowdown: Slowdown,
    /// Images already decoded and preprocessed when their request was checked, by request id:
    /// the local run takes the tensor instead of decoding again.
    prepared: Mutex<HashMap<u64, Arc<Vec<f32>>>>,
}

impl TractRunner {
    /// Loads the variant of every local target from `store`.
    pub fn load(store: &ModelStore, engine: &dyn Engine, targets: &Targets, top_k: usize, slowdown: Slowdown) -> Result<Self, RuntimeError> {
        let mut variants = Vec::with_capacity(targets.len());
        for t in targets.iter() {
            variants.push(match t.kind {
                TargetKind::Local { model, precision, .. } => {
                    let loaded = store.load(engine, targets.model_name(model), precision)?;
                    tracing::info!(target = targets.name(t.id), load_ms = loaded.load_time().as_secs_f64() * 1e3, "local variant loaded");
                    Some(Arc::new(loaded))
                }
                TargetKind::Edge { .. } => None,
            });
        }
        Ok(Self { variants, top_k: top_k.max(1), slowdown, prepared: Mutex::default() })
    }

    /// The loaded variant of a local target.
    pub fn variant(&self, target: TargetId) -> Option<&Arc<LocalModel>> {
        self.variants.get(target.index()).and_then(Option::as_ref)
    }

    /// Every loaded variant's manifest, by model name.
    pub fn manifests(&self) -> HashMap<String, Arc<ferry_runtime::Manifest>> {
        self.variants.iter().flatten().map(|m| (m.manifest().name.clone(), Arc::new(m.manifest().clone()))).collect()
    }

    /// Hands the local path the preprocessed tensor of request `id`'s image, until
    /// [`TractRunner::forget`].
    pub fn prepare(&self, id: u64, tensor: Arc<Vec<f32>>) {
        self.prepared.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tensor);
    }

    /// Drops what [`TractRunner::prepare`] kept for request `id` (it has been answered).
    pub fn forget(&self, id: u64) {
        self.prepared.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

impl LocalRunner for TractRunner {
    async fn run(&self, target: TargetId, request: Arc<Request>, cancel: Arc<AtomicBool>) -> Result<LocalResult, String> {
        let model = self.variant(target).cloned().ok_or_else(|| format!("target {} is not a local variant", target.index()))?;
        let k = self.top_k;
        let token = Cancel::from_flag(cancel.clone());
        let prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner()).get(&request.request_id).cloned();
        let inference = tokio::task::spawn_blocking(move || match prepared {
            Some(tensor) => {
                let shape = model.manifest().input.shape.clone();
                model.infer_tensor_cancellable(&shape, &tensor, k, &token).map(|i| (request.request_id, i)).map_err(|e| e.to_string())
            }
            None => infer(&model, &request, k, &token),
        })
            .await
            .map_err(|e| format!("local inference task: {e}"))??;
        let mut compute = inference.1.compute;
        if self.slowdown.is_on() {
            // Emulating a slower board: hold the engine for the time that board would take,
            // and stop holding it when cancelled, as the engine itself would stop.
            let extra = self.slowdown.extra(compute);
            let until = Instant::now() + extra;
            while Instant::now() < until {
                if cancel.load(Ordering::Acquire) {
                    return Err(RuntimeError::Cancelled.to_string());
                }
                tokio::time::sleep(EMULATION_STEP.min(until.saturating_duration_since(Instant::now()))).await;
            }
            compute += extra;
        }
        let compute_us = micros(compute);
        Ok(LocalResult {
            response: Response {
                request_id: inference.0,
                status: Status::Ok,
                detail: String::new(),
                timings: EdgeTimings { queue_wait_us: 0, compute_us, batch_size: 1, queue_depth: 0 },
                top_k: to_wire(&inference.1),
                output: None,
            },
            compute_us,
        })
    }
}

/// How often an emulated slow board looks at the cancel flag while it holds the engine.
const EMULATION_STEP: std::time::Duration = std::time::Duration::from_millis(2);

/// Runs one request on a variant: an encoded image or an f32 tensor. Stops early (an `Err`)
/// when `cancel` is set.
pub fn infer(model: &LocalModel, request: &Request, k: usize, cancel: &Cancel) -> Result<(u64, Inference), String> {
    let result = match &request.input {
        Input::Image { bytes, .. } => {
            preprocess::decode_image(bytes, "the request's image").and_then(|img| model.infer_image_cancellable(&img, k, cancel))
        }
        Input::Tensor(t) => {
            let t = t.as_ref();
            if t.dtype() != DType::F32 {
                return Err(format!("tensor of {:?}: the local models take f32", t.dtype()));
            }
            let shape: Vec<usize> = t.shape().dims().iter().map(|&d| d as usize).collect();
            let values: Vec<f32> = t.f32_values().ok_or("the tensor's bytes are not f32 values")?.collect();
            model.infer_tensor_cancellable(&shape, &values, k, cancel)
        }
        Input::ShapedImage { bytes, .. } => forms::tensor_of_shaped(model.manifest(), bytes, "the request's shaped image")
            .and_then(|t| model.infer_tensor_cancellable(&model.manifest().input.shape, &t, k, cancel)),
        Input::Quantized(q) => {
            let q = q.as_ref();
            let shape: Vec<usize> = q.tensor.shape().dims().iter().map(|&d| d as usize).collect();
            forms::tensor_of_quantized(model.manifest(), q.params(), &shape, q.tensor.data(), q.tensor.dtype() == DType::I8)
                .and_then(|t| model.infer_tensor_cancellable(&shape, &t, k, cancel))
        }
        // Made by the executor for the edge from an image request; never a local run's input.
        Input::Split { .. } => return Err("a split request's crossing tensor runs on the edge's tail, not locally".to_string()),
    };
    result.map(|i| (request.request_id, i)).map_err(|e| e.to_string())
}

/// Top-k as the wire protocol carries it.
pub fn to_wire(inference: &Inference) -> Vec<TopK> {
    inference
        .top
        .iter()
        .map(|c| TopK { class: u32::try_from(c.index).unwrap_or(u32::MAX), score: c.score, label: c.label.clone() })
        .collect()
}

fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}
