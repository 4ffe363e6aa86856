//! `agent/systemd/ferry.service` passes `systemd-analyze verify` with no complaint at all
//! (systemd reports unknown keys and bad values as warnings with exit 0, so the output must be
//! empty too), and it asks for what the agent does: notify readiness, watchdog, reload, hardening.

use std::path::Path;
use std::process::Command;

fn unit() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/ferry.service")).expect("unit file")
}

/// Verifies `text` as a unit file whose ExecStart points at the freshly built binary.
fn verify(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.service");
    std::fs::write(&path, text.replace("/usr/bin/ferry", env!("CARGO_BIN_EXE_ferry"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze (Debian: systemd)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_shipped_unit_verifies_without_a_single_warning() {
    let (ok, output) = verify(&unit());
    assert!(ok && output.trim().is_empty(), "systemd-analyze verify: {output}");
}

#[test]
fn the_check_would_catch_a_broken_unit() {
    let (ok, output) = verify(&unit().replace("[Service]", "[Service]\nWatchdogSecs=30s"));
    assert!(!ok || !output.trim().is_empty(), "a misspelt key went unnoticed");
}

#[test]
fn the_unit_asks_for_notify_watchdog_reload_and_hardening() {
    let u = unit();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=ferry",
        "SupplementaryGroups=i2c spi gpio",
    ] {
        assert!(u.contains(line), "ferry.service lacks {line}");
    }
}
