//! Split inference on the shipped models: every candidate cut's head and tail, composed, give
//! the whole model's answer (bundled pictures here; the 500-image evaluation split in
//! `ferry eval --splits`).

mod common;

use std::sync::Arc;

use ferry_runtime::split::{Half, Splitter};
use ferry_runtime::{preprocess, Cancel, Precision, Threads, TractEngine};

fn splitter(name: &str) -> Splitter {
    let manifest = Arc::new(common::store().manifest(name).unwrap());
    Splitter::open(manifest).unwrap()
}

#[test]
fn efficientnet_has_shrinking_cuts_below_its_input() {
    let s = splitter("efficientnet-lite0");
    let cuts = s.cuts();
    for c in cuts {
        eprintln!("{} {:>6} values  {:?}  {}", c.name(), c.values(), c.shape, c.tensor);
    }
    assert!(cuts.len() >= 3, "{cuts:?}");
    assert!(cuts[0].values() < 3 * 224 * 224);
    assert!(cuts.windows(2).all(|w| w[1].values() < w[0].values() && w[1].nodes > w[0].nodes));
    for c in cuts {
        assert_eq!(s.by_tensor(&c.tensor), Some(c));
        assert_eq!(s.by_name(&c.name()), Some(c));
    }
    assert!(s.by_name("split@0").is_none());
}

#[test]
fn every_efficientnet_cut_composes_to_the_whole_model() {
    let s = splitter("efficientnet-lite0");
    let whole = common::load("efficientnet-lite0", Precision::Fp32);
    let engine = TractEngine::new(Threads(1));
    let cache = tempfile::tempdir().unwrap();
    let pictures: Vec<_> = ["cat.jpg", "espresso.jpg", "horse.jpg", "rocket.jpg", "motorcycle.jpg"]
        .iter()
        .map(|f| preprocess::load_image(&common::models_dir().join("images").join(f)).unwrap())
        .collect();
    let answers: Vec<_> = pictures.iter().map(|p| whole.infer_image(p, 5).unwrap()).collect();
    for cut in s.cuts() {
        let head = s.load_head(&engine, cut, cache.path()).unwrap();
        let tail = s.load_tail(&engine, cut, cache.path()).unwrap();
        for (picture, want) in pictures.iter().zip(&answers) {
            let (q, _) = head.run_image(picture, &Cancel::new()).unwrap();
            assert_eq!(q.values.len(), cut.values());
            let got = tail.infer(&cut.shape, q.scale, q.zero_point, &q.values, 5).unwrap();
            if want.top[0].score >= 0.5 {
                assert_eq!(got.top[0].index, want.top[0].index, "{}: {} vs {}", cut.name(), got.top[0].label, want.top[0].label);
            }
            // The quantized tensor moves the probabilities, a little.
            let drift = got.probabilities.iter().zip(&want.probabilities).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(drift < 0.2, "{}: probabilities moved by {drift}", cut.name());
        }
    }
}

#[test]
fn halves_are_cached_and_a_wrong_tensor_is_refused() {
    let s = splitter("efficientnet-lite0");
    let cache = tempfile::tempdir().unwrap();
    let cut = s.cuts().last().unwrap().clone();
    let first = s.half(&cut, Half::Tail, cache.path()).unwrap();
    let stamp = std::fs::metadata(&first).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = s.half(&cut, Half::Tail, cache.path()).unwrap();
    assert_eq!(again, first);
    assert_eq!(std::fs::metadata(&again).unwrap().modified().unwrap(), stamp, "written once");
    let tail = s.load_tail(&TractEngine::new(Threads(1)), &cut, cache.path()).unwrap();
    let e = tail.infer(&[1, 2, 3], 0.1, 0, &[0; 6], 5).unwrap_err().to_string();
    assert!(e.contains(&cut.name()) && e.contains("shape"), "{e}");
    let zeros = vec![0u8; cut.values()];
    assert!(tail.infer(&cut.shape, f32::NAN, 0, &zeros, 5).is_err());
    assert!(tail.infer(&cut.shape, 0.1, 300, &zeros, 5).is_err());
    assert!(tail.infer(&cut.shape, 0.1, 0, &zeros, 5).is_ok());
}

/// The digits model's 8×8 input is smaller than every tensor inside it: no cut sends less
/// than the input, so it has no candidates (and an edge serves it no split requests).
#[test]
fn the_digits_model_has_no_cut_worth_sending() {
    let s = splitter("digits");
    assert!(s.cuts().is_empty(), "{:?}", s.cuts());
}

/// The manifest's `[[evaluation.cut]]` figures are of this file's cuts: the same names,
/// tensors and bytes (a re-exported model with other cuts fails here until re-measured).
#[test]
fn the_manifest_measured_exactly_these_cuts() {
    let s = splitter("efficientnet-lite0");
    let e = s.manifest().evaluation.clone().expect("[evaluation]");
    let measured: Vec<(String, String, u32)> = e.cuts.iter().map(|c| (c.cut.clone(), c.tensor.clone(), c.bytes)).collect();
    let found: Vec<(String, String, u32)> = s.cuts().iter().map(|c| (c.name(), c.tensor.clone(), c.values() as u32)).collect();
    assert_eq!(measured, found);
    for c in &e.cuts {
        assert_eq!(c.confident_agreement, 100.0, "{}", c.cut);
    }
}
