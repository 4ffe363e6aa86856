//! The `ferry-sim` command line: help, and clear errors for bad options.

use std::process::Command;

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry-sim")).args(args).env("RUST_BACKTRACE", "0").output().unwrap()
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for flag in ["--help", "-h"] {
        let out = sim(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("usage: ferry-sim"), "{flag}: {text}");
        assert!(text.contains("--load trace|none"), "{text}");
    }
}

#[test]
fn bad_options_fail_with_the_usage() {
    for args in [&["--frobnicate", "x"][..], &["--load", "sometimes", "t.toml"], &["--board-slowdown", "0.5", "t.toml"], &[]] {
        let out = sim(args);
        assert!(!out.status.success(), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: ferry-sim") || err.contains("expected"), "{args:?}: {err}");
    }
}
