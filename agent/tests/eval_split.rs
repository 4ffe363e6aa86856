//! Re-measures the manifest's INT8 figures on the shared evaluation split (`ferry eval`): the
//! accuracy gate lets efficientnet-lite0 INT8 run on what `[[evaluation.variant]]` says, so CI
//! checks that it still holds for the files and the engine on main.
//!
//! The labelled set is `../shared/eval/imagenet-val-650` beside the repository, or
//! `$FERRY_EVAL_DATA`. Where neither exists the test prints that it did not run and how to point
//! it at the data, and passes: the images are not in the repository (their licence).

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn int8_figures_in_the_manifest_hold_when_re_measured_on_the_evaluation_split() {
    let data = std::env::var_os("FERRY_EVAL_DATA").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared/eval/imagenet-val-650"));
    if !data.join("labels.csv").is_file() {
        eprintln!(
            "NOT RUN: no labelled set at {} (set FERRY_EVAL_DATA to a folder with labels.csv and images/, \
             e.g. the shared imagenet-val-650)",
            data.display()
        );
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["eval", "--model", "efficientnet-lite0", "--forms", "original", "--json", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(repo().join("models"))
        .output()
        .expect("ferry eval runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["split"]["part"], "evaluation");
    assert_eq!(v["split"]["images"], 500, "{}", v["split"]);

    let manifest: toml::Value = toml::from_str(&std::fs::read_to_string(repo().join("models/efficientnet-lite0/manifest.toml")).unwrap()).unwrap();
    let eval = &manifest["evaluation"];
    let listed = eval["variant"].as_array().unwrap().iter().find(|x| x["precision"].as_str() == Some("int8")).expect("[[evaluation.variant]] int8");
    let f = |x: &toml::Value| x.as_float().unwrap();
    let int8 = &v["variants"]["int8"];
    let fp32 = &v["variants"]["fp32"];
    let measured = |x: &serde_json::Value| x.as_f64().unwrap();
    eprintln!("re-measured: fp32 top-1 {}, int8 top-1 {}, drop {}", fp32["top1"]["percent"], int8["top1"]["percent"], int8["top1_drop"]);
    // Integer arithmetic is exact on every kernel; FP32 may flip a near-tie on another CPU.
    assert!((measured(&fp32["top1"]["percent"]) - f(&eval["top1"])).abs() <= 1.0, "fp32 top-1: {} vs the manifest's {}", fp32["top1"], eval["top1"]);
    assert!((measured(&int8["top1"]["percent"]) - f(&listed["top1"])).abs() <= 1.0, "int8 top-1: {} vs the manifest's {}", int8["top1"], listed["top1"]);
    assert!((measured(&int8["agreement_with_fp32"]["percent"]) - f(&listed["agreement"])).abs() <= 1.0, "{}", int8["agreement_with_fp32"]);
    // The gate's claim: the upper end of the drop's interval within the bound.
    let max_drop = f(&manifest["accuracy"]["max_drop"]);
    assert!(measured(&int8["top1_drop"]["high"]) <= max_drop, "drop {} above max_drop {max_drop}", int8["top1_drop"]);
}
