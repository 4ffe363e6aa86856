//! The integer kernels measured on this host (`ferry_runtime::quant::kernels`): the plan runs
//! what was chosen, the answers are those of tract's own pick (the same integer arithmetic on
//! another kernel), and the choice is cached so that a second load does not time again.
//!
//! One test function: the choice is process-wide while a model is optimized, so the loads are
//! made one after the other.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use ferry_runtime::quant::{self, kernels};
use ferry_runtime::{preprocess, Kernels, LocalModel, Precision, Threads, TractEngine};
use tract_onnx::prelude::*;

const IMAGES: [&str; 4] = ["cat.jpg", "espresso.jpg", "horse.jpg", "rocket.jpg"];

fn rewritten() -> TypedModel {
    let path = common::models_dir().join("efficientnet-lite0/efficientnet-lite0.int8.onnx");
    let typed = tract_onnx::onnx()
        .model_for_path(&path)
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, 224, 224]).into()))
        .and_then(|m| m.into_typed())
        .expect("the shipped INT8 model loads");
    quant::integerize(&typed).expect("the rewrite").0
}

fn load(kernels: Kernels) -> LocalModel {
    let store = common::store();
    let manifest = Arc::new(store.manifest("efficientnet-lite0").unwrap());
    LocalModel::load(&TractEngine::new(Threads(1)).with_kernels(kernels), manifest, Precision::Int8).expect("INT8 loads")
}

#[test]
fn measured_kernels_run_as_chosen_answer_as_tracts_own_and_are_cached() {
    let model = rewritten();

    // Measured, not cached: one choice per distinct product shape, each among the timed
    // candidates, and the optimized plan runs exactly the chosen kernels.
    let choices = kernels::choose(&model, None).expect("measured");
    let shapes: BTreeSet<_> = choices.iter().map(|c| c.shape).collect();
    assert!(shapes.len() >= 10 && shapes.len() == choices.len(), "{} choices, {} shapes", choices.len(), shapes.len());
    for c in &choices {
        assert!(c.timings.iter().any(|t| t.kernel == c.chosen), "{c:?}");
        assert_eq!(c.timings[0].kernel, c.default, "tract's own pick is timed first: {c:?}");
        let fastest = c.timings.iter().min_by_key(|t| t.median).unwrap();
        let default = &c.timings[0];
        // The default stays unless the fastest beat it by the margin.
        if c.chosen == c.default {
            assert!(fastest.median.as_secs_f64() >= default.median.as_secs_f64() * (1.0 - kernels::MARGIN), "{c:?}");
        } else {
            assert_eq!(c.chosen, fastest.kernel, "{c:?}");
        }
    }
    let chosen: BTreeSet<String> = choices.iter().map(|c| c.chosen.clone()).collect();
    let optimized = model.clone().into_optimized().expect("optimized");
    let ran: Vec<(String, String)> = kernels::kernels_of(&optimized);
    let integer: Vec<&(String, String)> = ran.iter().filter(|(_, k)| k.contains("i32")).collect();
    assert!(integer.len() >= choices.len(), "{ran:?}");
    for (node, kernel) in &integer {
        assert!(chosen.contains(kernel), "{node} runs {kernel}, which was chosen for no shape ({chosen:?})");
    }

    // The answers: the same as with tract's own kernels, on real images.
    let dir = tempfile::tempdir().unwrap();
    let measured = load(Kernels::Measured(Some(dir.path().to_path_buf())));
    let tract = load(Kernels::Tract);
    let store = common::store();
    let manifest = store.manifest("efficientnet-lite0").unwrap();
    for name in IMAGES {
        let image = preprocess::load_image(&common::models_dir().join("images").join(name)).unwrap();
        let x = preprocess::image_to_tensor(&manifest, &image);
        let shape = [1, 3, 224, 224];
        let (a, b) = (measured.infer_tensor(&shape, &x, 5).unwrap(), tract.infer_tensor(&shape, &x, 5).unwrap());
        assert_eq!(a.top[0].index, b.top[0].index, "{name}");
        for (p, q) in a.top.iter().zip(&b.top) {
            assert!((p.score - q.score).abs() < 1e-4, "{name}: {p:?} vs {q:?}");
        }
    }

    // Cached: the file names this host, holds one line per shape, and a second choice reads it
    // instead of timing again.
    let cache = kernels::Cache::in_dir(dir.path());
    let text = std::fs::read_to_string(cache.path()).expect("the cache was written");
    assert_eq!(text.lines().count(), shapes.len(), "{text}");
    assert_eq!(cache.read().len(), shapes.len());
    let again = kernels::choose(&model, Some(&cache)).expect("from the cache");
    assert!(again.is_empty(), "measured again despite the cache: {again:?}");
}
