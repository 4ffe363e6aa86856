//! A running inference stops when it is cancelled: tract checks the token before every node.
//! Deterministic: the token cancels itself at a given check, no clock involved.

mod common;

use ferry_runtime::{preprocess, Cancel, Precision, RuntimeError};

fn espresso() -> image::DynamicImage {
    preprocess::load_image(&common::models_dir().join("images").join("espresso.jpg")).expect("bundled image")
}

#[test]
fn an_uncancelled_run_checks_once_per_node_and_answers_like_the_plain_call() {
    let model = common::load("efficientnet-lite0", Precision::Fp32);
    let image = espresso();
    let cancel = Cancel::new();
    let got = model.infer_image_cancellable(&image, 3, &cancel).expect("runs to the end");
    let plain = model.infer_image(&image, 3).expect("runs");
    assert_eq!(got.top[0].index, plain.top[0].index);
    assert_eq!(got.probabilities, plain.probabilities);
    // One check before the preprocessing plus one per node of the optimized plan (dozens).
    assert!(cancel.checks() > 30, "{} checks", cancel.checks());
}

#[test]
fn a_run_cancelled_part_way_stops_there_and_the_next_run_is_whole() {
    for precision in [Precision::Fp32, Precision::Int8] {
        let model = common::load("efficientnet-lite0", precision);
        let image = espresso();
        let full = Cancel::new();
        let expected = model.infer_image_cancellable(&image, 3, &full).expect("runs");
        let nodes = full.checks();
        // Stop at the tenth check: nine nodes ran, the rest did not.
        let cancel = Cancel::after_checks(10);
        let err = model.infer_image_cancellable(&image, 3, &cancel).expect_err("stopped");
        assert!(matches!(err, RuntimeError::Cancelled), "{precision}: {err}");
        assert_eq!(cancel.checks(), 10, "{precision}: no node ran after the stop ({nodes} in a whole run)");
        // The stopped state was thrown away: the next run is complete and identical.
        let again = model.infer_image_cancellable(&image, 3, &Cancel::new()).expect("runs");
        assert_eq!(again.probabilities, expected.probabilities, "{precision}");
    }
}

#[test]
fn a_token_cancelled_from_outside_stops_the_run_before_it_starts() {
    let model = common::load("digits", Precision::Fp32);
    let cancel = Cancel::new();
    cancel.cancel();
    let shape = model.manifest().input.shape.clone();
    let data = vec![0.0f32; shape.iter().product()];
    let err = model.infer_tensor_cancellable(&shape, &data, 3, &cancel).expect_err("cancelled");
    assert!(matches!(err, RuntimeError::Cancelled), "{err}");
}
