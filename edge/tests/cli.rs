//! The `ferry-edge` binary checks configs before starting anything. (Also makes
//! `cargo test -p ferry-edge` build the binary that ferry-tests' end-to-end tests start.)

use std::path::Path;
use std::process::Command;

fn edge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferry-edge"))
}

#[test]
fn check_accepts_the_shipped_config() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-configs/edge.toml");
    let out = edge().arg("--check").arg("--config").arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn check_names_the_unknown_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, "workers = 2\nworkres = 3\n[mqtt]\nbroker = \"mqtts://h\"\n").unwrap();
    let out = edge().arg("--check").arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("workres"));
}

#[test]
fn plain_tcp_without_insecure_is_refused_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, "[mqtt]\nbroker = \"mqtt://127.0.0.1:1883\"\n").unwrap();
    let out = edge().arg("--check").arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("insecure"));
}
