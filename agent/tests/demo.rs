//! `ferry demo` runs end to end on this machine with nothing but the repository: in-process
//! broker and edge, emulated link, three policies, a summary. (Its latency figures are a
//! benchmark, recorded in BENCHMARKS.md, not asserted here.)

use std::process::Command;

#[test]
fn the_demo_runs_every_policy_through_every_phase_and_prints_the_summary() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["demo", "--per-phase", "2"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("FERRY_MODELS")
        .output()
        .expect("run ferry demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for policy in ["adaptive", "always-local", "always-offload"] {
        let row = stdout.lines().find(|l| l.trim_start().starts_with(policy) && !l.contains("Mbit/s") && l.split_whitespace().count() == 8);
        let row = row.unwrap_or_else(|| panic!("no summary row for {policy}: {stdout}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        // policy, mean, p95, local, edge, failed, fallbacks, misses: 8 requests each, none failed.
        let local: u32 = cols[3].parse().unwrap();
        let edge: u32 = cols[4].parse().unwrap();
        assert_eq!(local + edge, 8, "{row}");
        assert_eq!(cols[5], "0", "failed requests: {row}");
    }
    assert!(stdout.contains("[LL]"), "always-local ran locally: {stdout}");
    assert!(stdout.contains("adaptive mean / best static mean"), "{stdout}");
}
