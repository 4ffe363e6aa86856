//! `ferry infer`: one model, run locally, on images or a raw tensor.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ferry_runtime::{preprocess, Inference, LocalModel, ModelStore, Threads, TractEngine};

use crate::cli::InferArgs;

/// The image `ferry infer` classifies when none is given.
pub const DEFAULT_IMAGE: &str = "images/cat.jpg";

/// Runs `ferry infer`.
pub fn run(args: &InferArgs) -> Result<()> {
    let store = super::store(&args.models);
    let engine = TractEngine::new(Threads(args.threads.into()));
    let model = store.load(&engine, &args.model, args.precision)?;
    tracing::info!(model = %args.model, precision = %args.precision, load_ms = model.load_time().as_secs_f64() * 1e3, "model loaded");
    let k = args.top.into();

    if let Some(path) = &args.tensor {
        let data = read_f32_file(path)?;
        let shape = args.shape.clone().unwrap_or_else(|| model.manifest().input.shape.clone());
        let answer = model.infer_tensor(&shape, &data, k).with_context(|| format!("{}", path.display()))?;
        print_answer(args, &model, &path.display().to_string(), &answer);
        return Ok(());
    }
    for path in images(args, &store) {
        let image = preprocess::load_image(&path)?;
        let answer = model.infer_image(&image, k)?;
        print_answer(args, &model, &path.display().to_string(), &answer);
    }
    Ok(())
}

fn images(args: &InferArgs, store: &ModelStore) -> Vec<PathBuf> {
    if args.images.is_empty() {
        vec![store.dir().join(DEFAULT_IMAGE)]
    } else {
        args.images.clone()
    }
}

/// Reads a file of little-endian f32 values.
fn read_f32_file(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the tensor file", path.display()))?;
    if bytes.len() % 4 != 0 {
        bail!("{}: {} bytes is not a whole number of little-endian f32 values", path.display(), bytes.len());
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn print_answer(args: &InferArgs, model: &LocalModel, source: &str, answer: &Inference) {
    let ms = answer.compute.as_secs_f64() * 1e3;
    if args.json {
        let top: Vec<_> = answer
            .top
            .iter()
            .map(|c| serde_json::json!({"index": c.index, "label": c.label, "score": c.score}))
            .collect();
        let line = serde_json::json!({
            "input": source,
            "model": model.manifest().name,
            "precision": model.precision().as_str(),
            "ran": "local",
            "compute_ms": ms,
            "top": top,
        });
        println!("{line}");
        return;
    }
    println!("{source}: {} {} on tract, {ms:.2} ms", model.manifest().name, model.precision());
    for (rank, c) in answer.top.iter().enumerate() {
        println!("  {}. {:<32} {:>6.2}%  (class {})", rank + 1, c.label, c.score * 100.0, c.index);
    }
}
