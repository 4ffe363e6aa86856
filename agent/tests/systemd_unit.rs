//! `agent/systemd/ferry.service` passes `systemd-analyze verify` with no complaint at all
//! (systemd reports unknown keys and bad values as warnings with exit 0, so the output must be
//! empty too), and it asks for what the agent does: notify readiness, watchdog, reload, hardening,
//! the key as a credential, and groups that exist. That it works under a real systemd is
//! `tests/tests/systemd_unit.rs`.

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
        // The shell's kill: a minimal Debian has no /bin/kill (203/EXEC on reload).
        "ExecReload=/bin/sh -c 'kill -HUP \"$MAINPID\"'",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=ferry",
        "RuntimeDirectoryMode=0755",
        "SupplementaryGroups=ferry-apps i2c spi gpio",
        "LoadCredential=device.key:/etc/ferry/certs/device.key",
    ] {
        assert!(u.contains(line), "ferry.service lacks {line}");
    }
    let runs_kill = u.lines().filter(|l| !l.trim_start().starts_with('#')).any(|l| l.contains("/bin/kill"));
    assert!(!runs_kill, "ferry.service runs /bin/kill, absent from a minimal Debian");
}

/// The lines of `text` that are not comments, split in fields.
fn entries(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn every_supplementary_group_is_created_by_the_shipped_sysusers_file() {
    // systemd has no optional group: one that does not exist fails the unit with 216/GROUP.
    let u = unit();
    let groups: Vec<&str> = u
        .lines()
        .find_map(|l| l.strip_prefix("SupplementaryGroups="))
        .expect("SupplementaryGroups=")
        .split_whitespace()
        .collect();
    let sysusers = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/ferry.sysusers")).unwrap();
    let created: Vec<String> = entries(&sysusers).into_iter().filter(|e| e.first().map(String::as_str) == Some("g")).filter_map(|e| e.get(1).cloned()).collect();
    for g in groups {
        assert!(created.iter().any(|c| c == g), "ferry.sysusers does not create `{g}`: {created:?}");
    }
}

#[test]
fn the_credentials_the_unit_loads_are_the_ones_the_shipped_config_names() {
    let u = unit();
    let loaded: Vec<&str> = u.lines().filter_map(|l| l.strip_prefix("LoadCredential=")).filter_map(|l| l.split(':').next()).collect();
    let config = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-configs/agent.toml")).unwrap();
    for key in ["ca", "cert", "key"] {
        let line = config.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("agent.toml has no [mqtt] {key}"));
        let name = line.split('"').nth(1).and_then(|v| v.strip_prefix("credential:")).unwrap_or_else(|| panic!("{line}: not a credential"));
        assert!(loaded.contains(&name), "agent.toml's {key} is credential {name}, which the unit does not load: {loaded:?}");
    }
}
