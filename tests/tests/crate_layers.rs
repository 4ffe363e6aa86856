//! The crate boundaries are layers that Cargo enforces: the decision core links no I/O, the
//! edge links no decision, and the board build of `ferry` links neither a broker nor the edge
//! server. Read from `cargo tree` on the real workspace, so that a dependency added in the
//! wrong place fails here.

use std::path::Path;
use std::process::Command;

/// The packages `package` links (normal dependencies only, target platform), one name each.
fn linked(package: &str, extra: &[&str]) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--locked", "--offline", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .args(extra)
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn assert_none_of(package: &str, extra: &[&str], forbidden: &[&str]) {
    let names = linked(package, extra);
    // The package itself is always listed: an empty tree would mean the query went wrong.
    assert!(names.iter().any(|n| n == package), "cargo tree -p {package} did not list {package}: {names:?}");
    let found: Vec<&String> = names.iter().filter(|n| forbidden.contains(&n.as_str())).collect();
    assert!(found.is_empty(), "{package} {extra:?} links {found:?}");
}

#[test]
fn the_decision_core_links_no_async_runtime_network_or_tls() {
    assert_none_of("ferry-decide", &[], &["tokio", "rumqttc", "rustls", "tokio-rustls", "axum", "mio"]);
}

#[test]
fn the_edge_links_no_decision_executor_or_simulator() {
    assert_none_of("ferry-edge", &[], &["ferry-decide", "ferry-exec", "ferry-agent"]);
}

#[test]
fn the_board_build_of_ferry_links_no_broker_and_no_edge_server() {
    assert_none_of("ferry-agent", &["--no-default-features"], &["rumqttd", "ferry-edge"]);
    // And the default build (the README's demo) does: the check above is not vacuous.
    let default = linked("ferry-agent", &[]);
    assert!(default.iter().any(|n| n == "rumqttd"), "{default:?}");
}
