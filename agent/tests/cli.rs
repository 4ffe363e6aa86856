//! The `ferry` binary as a user runs it: answers on good input, a named error and a non-zero
//! exit on bad input, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(repo())
        .env_remove("FERRY_MODELS")
        .output()
        .expect("run ferry")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fails_naming(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert_eq!(out.status.code(), Some(1), "exit code (a panic would be 101): {err}");
    assert!(err.contains(needle), "stderr does not name {needle:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn infer_with_no_arguments_classifies_the_bundled_cat() {
    let out = ferry(&["infer", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["model"], "efficientnet-lite0");
    assert_eq!(line["precision"], "int8");
    let top1 = line["top"][0]["index"].as_u64().expect("top-1 index");
    assert!((281..=285).contains(&top1), "cat.jpg → {line}");
    assert_eq!(line["top"].as_array().map(Vec::len), Some(5));
}

#[test]
fn infer_reads_a_digit_png_and_a_raw_tensor() {
    let out = ferry(&["infer", "--model", "digits", "--precision", "fp32", "--json", "models/images/digit-3.png"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["top"][0]["label"], "3");

    let dir = tempfile::tempdir().unwrap();
    let tensor = dir.path().join("zeros.f32");
    std::fs::write(&tensor, vec![0u8; 64 * 4]).unwrap();
    let out = ferry(&["infer", "--model", "digits", "--tensor", tensor.to_str().unwrap(), "--shape", "1,1,8,8"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bad_inputs_exit_non_zero_with_an_error_that_names_what_is_wrong() {
    fails_naming(&ferry(&["infer", "--model", "resnet-9000"]), "unknown model `resnet-9000`");
    fails_naming(&ferry(&["infer", "models/images/absent.jpg"]), "absent.jpg");
    fails_naming(&ferry(&["infer", "models/digits/labels.txt"]), "labels.txt: cannot read the image");

    let dir = tempfile::tempdir().unwrap();
    let tensor = dir.path().join("short.f32");
    std::fs::write(&tensor, vec![0u8; 10 * 4]).unwrap();
    fails_naming(&ferry(&["infer", "--model", "digits", "--tensor", tensor.to_str().unwrap()]), "expected shape [1, 1, 8, 8]");
    std::fs::write(&tensor, vec![0u8; 7]).unwrap();
    fails_naming(&ferry(&["infer", "--model", "digits", "--tensor", tensor.to_str().unwrap()]), "short.f32");

    // A model folder whose INT8 file is corrupt.
    let models = dir.path().join("models");
    let digits = models.join("digits");
    std::fs::create_dir_all(&digits).unwrap();
    for f in ["manifest.toml", "labels.txt", "digits.fp32.onnx"] {
        std::fs::copy(repo().join("models/digits").join(f), digits.join(f)).unwrap();
    }
    std::fs::write(digits.join("digits.int8.onnx"), b"\x08\x07garbage").unwrap();
    let models_arg = models.to_str().unwrap();
    fails_naming(&ferry(&["infer", "--models", models_arg, "--model", "digits", "models/images/digit-3.png"]), "digits.int8.onnx");
    // ... and the FP32 variant of the same folder still works.
    let out = ferry(&["infer", "--models", models_arg, "--model", "digits", "--precision", "fp32", "models/images/digit-3.png"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn usage_errors_are_reported_by_the_parser() {
    let out = ferry(&["infer", "--precision", "fp64"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("fp64"));
    let out = ferry(&["infer", "--top", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_passes_on_every_shipped_board_config() {
    for board in ["rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "x86-dev"] {
        let path = format!("firmware-configs/{board}.toml");
        let out = ferry(&["check", "--config", &path]);
        assert!(out.status.success(), "{path}: {}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"), "{path}");
    }
}

#[test]
fn check_refuses_a_coap_edge_target_naming_the_file_and_the_key() {
    // CoAP is not implemented: a coaps:// target would be a phantom edge routed over [mqtt].
    let text = std::fs::read_to_string(repo().join("firmware-configs/x86-dev.toml")).unwrap()
        + "\n[[targets]]\nkind = \"edge\"\nname = \"edge-coap\"\nendpoint = \"coaps://edge.local:5684\"\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coap-board.toml");
    std::fs::write(&path, text).unwrap();
    let out = ferry(&["check", "--config", path.to_str().unwrap()]);
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("coap-board.toml") && report.contains(".endpoint") && report.contains("CoAP is not implemented"), "{report}");
}

#[test]
fn check_fails_on_every_broken_config_and_names_the_file_and_key() {
    let cases = [
        ("unknown-driver", "driver"),
        ("unknown-key", "unknown"),
        ("missing-bus", "bus"),
        ("out-of-range", "expected"),
        ("wrong-i2c-address", "address"),
        ("many-errors", "error"),
    ];
    for (name, key) in cases {
        let path = format!("tests/configs/{name}.toml");
        let out = ferry(&["check", "--config", &path]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{path}: {text}");
        assert!(text.contains(&format!("{name}.toml")) && text.contains(key), "{path}: {text}");
    }
}

#[test]
fn sensors_prints_live_system_probe_readings_on_this_machine() {
    let out = ferry(&["sensors", "--config", "firmware-configs/x86-dev.toml", "--interval-ms", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cpu_utilization") && text.contains("memory_total"), "{text}");
}

#[test]
fn help_lists_every_subcommand() {
    let out = ferry(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["infer", "bench", "check", "sensors"] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
}
