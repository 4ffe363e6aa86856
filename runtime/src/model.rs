//! A loaded model variant: its manifest, labels and engine session, with the calls callers use
//! (image or tensor in, top-k out).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_hal::Precision;
use image::DynamicImage;

use crate::engine::{Cancel, Engine, Session};
use crate::error::RuntimeError;
use crate::manifest::{Manifest, Scores};
use crate::preprocess::{check_tensor, image_to_tensor};
use crate::topk::{softmax, top_k, Class};

/// The answer to one input.
#[derive(Debug, Clone)]
pub struct Inference {
    /// The best classes, best first.
    pub top: Vec<Class>,
    /// The probability of every class.
    pub probabilities: Vec<f32>,
    /// The time the engine spent on this input (preprocessing not included).
    pub compute: Duration,
}

/// One precision of one model, loaded once and shared (`Arc`) by every caller.
pub struct LocalModel {
    manifest: Arc<Manifest>,
    precision: Precision,
    labels: Vec<String>,
    session: Box<dyn Session>,
    load_time: Duration,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel").field("model", &self.manifest.name).field("precision", &self.precision).finish()
    }
}

impl LocalModel {
    /// Loads the `precision` variant of the model `manifest` describes, with `engine`.
    pub fn load(engine: &dyn Engine, manifest: Arc<Manifest>, precision: Precision) -> Result<LocalModel, RuntimeError> {
        let start = Instant::now();
        let labels = manifest.read_labels()?;
        let session = engine.load(&manifest, precision)?;
        Ok(LocalModel { manifest, precision, labels, session, load_time: start.elapsed() })
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The precision this variant runs in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// How long loading and optimizing took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The class labels, in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Classifies a decoded image.
    pub fn infer_image(&self, image: &DynamicImage, k: usize) -> Result<Inference, RuntimeError> {
        let tensor = image_to_tensor(&self.manifest, image);
        self.infer_prepared(&tensor, k)
    }

    /// Classifies a raw input tensor of the model's input shape (already normalised).
    pub fn infer_tensor(&self, shape: &[usize], data: &[f32], k: usize) -> Result<Inference, RuntimeError> {
        check_tensor(&self.manifest, shape, data)?;
        self.infer_prepared(data, k)
    }

    /// [`Self::infer_image`], stopping early with [`RuntimeError::Cancelled`] once `cancel` is set.
    pub fn infer_image_cancellable(&self, image: &DynamicImage, k: usize, cancel: &Cancel) -> Result<Inference, RuntimeError> {
        cancel.check()?;
        let tensor = image_to_tensor(&self.manifest, image);
        let one = self.session.run_cancellable(&tensor, cancel)?;
        Ok(self.finish(one.scores, one.compute, k))
    }

    /// [`Self::infer_tensor`], stopping early with [`RuntimeError::Cancelled`] once `cancel` is set.
    pub fn infer_tensor_cancellable(&self, shape: &[usize], data: &[f32], k: usize, cancel: &Cancel) -> Result<Inference, RuntimeError> {
        check_tensor(&self.manifest, shape, data)?;
        let one = self.session.run_cancellable(data, cancel)?;
        Ok(self.finish(one.scores, one.compute, k))
    }

    /// Classifies a batch of raw tensors, each of the model's input shape.
    pub fn infer_batch(&self, inputs: &[&[f32]], k: usize) -> Result<Vec<Inference>, RuntimeError> {
        let shape = &self.manifest.input.shape;
        for data in inputs {
            check_tensor(&self.manifest, shape, data)?;
        }
        let raw = self.session.run_batch(inputs)?;
        Ok(raw.into_iter().map(|r| self.finish(r.scores, r.compute, k)).collect())
    }

    fn infer_prepared(&self, data: &[f32], k: usize) -> Result<Inference, RuntimeError> {
        let mut raw = self.session.run_batch(&[data])?;
        let one = raw.pop().ok_or_else(|| RuntimeError::Inference {
            model: self.manifest.name.clone(),
            precision: self.precision,
            message: "the engine returned no result".to_string(),
        })?;
        Ok(self.finish(one.scores, one.compute, k))
    }

    fn finish(&self, scores: Vec<f32>, compute: Duration, k: usize) -> Inference {
        finish(&self.manifest, &self.labels, scores, compute, k)
    }
}

/// The answer from a model's raw output scores: probabilities (softmax of logits) and top `k`.
/// The whole model and a split's tail both end here.
pub(crate) fn finish(manifest: &Manifest, labels: &[String], mut scores: Vec<f32>, compute: Duration, k: usize) -> Inference {
    if manifest.output.scores == Scores::Logits {
        softmax(&mut scores);
    }
    let top = top_k(&scores, labels, k);
    Inference { top, probabilities: scores, compute }
}
