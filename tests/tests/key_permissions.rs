//! The device's private key (issue 14, defect 3): a key that other users can read stops
//! `ferry run` at start with an error that names the config file, the key and the fix; and
//! the key can come from systemd's credentials directory (`LoadCredential=` in the unit,
//! `key = "credential:NAME"` in the config), which is how a `DynamicUser=` service reads a key
//! that stays `0600 root` on disk. Before, any key was read, whoever could read it, and a
//! dynamic user could not read the key at all.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_tests::harness::{chmod, pki, repo_root, workspace_binary, Broker, Proc};

/// The x86 board config with its edge target's endpoint set to `broker` (a target routes by
/// its endpoint, which must be the agent's `[mqtt]` broker), written into `dir`.
fn dev_board(dir: &std::path::Path, broker: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_root().join("firmware-configs/x86-dev.toml"))
        .expect("x86-dev.toml");
    let from = "endpoint = \"mqtt://127.0.0.1:1883\"";
    assert!(
        text.contains(from),
        "x86-dev.toml's edge endpoint changed: adapt this test"
    );
    let path = dir.join("x86-dev.toml");
    std::fs::write(
        &path,
        text.replacen(from, &format!("endpoint = \"{broker}\""), 1),
    )
    .expect("write the board config");
    path
}

/// Writes an agent config for `dev-1` whose `[mqtt]` has `ca`, `cert` and `key` as given.
fn config(dir: &Path, broker: &str, ca: &str, cert: &str, key: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 0\n\
             [api]\ntcp = \"127.0.0.1:0\"\n\
             [mqtt]\nbroker = \"{broker}\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
             [telemetry]\nenabled = false\n",
            dev_board(dir, broker).display(),
            repo_root().join("models").display(),
        ),
    )
    .unwrap();
    path
}

/// Runs `ferry run --config config` until it exits (at most 120 s: it loads the models
/// first); what it wrote on stderr.
fn run_to_exit(config: &Path, env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(workspace_binary("ferry"));
    cmd.args(["run", "--config"])
        .arg(config)
        .env_remove("CREDENTIALS_DIRECTORY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut agent = Proc::spawn(cmd, "ferry");
    let end = Instant::now() + Duration::from_secs(120);
    while agent.is_running() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still = agent.is_running();
    agent.kill();
    agent.stderr.wait_eof();
    let text = agent.stderr.text();
    assert!(!still, "ferry run did not stop in 120 s:\n{text}");
    text
}

#[test]
fn a_key_that_other_users_can_read_stops_ferry_run_naming_the_config_the_key_and_the_fix() {
    let certs = pki().join("certs");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dev-1.key");
    std::fs::copy(certs.join("dev-1.key"), &key).unwrap();
    let secret = std::fs::read_to_string(&key).unwrap();
    let (ca, cert) = (certs.join("ca.crt"), certs.join("dev-1.crt"));
    // No broker needed: the key is read before the first connection.
    let broker = "mqtts://127.0.0.1:9";
    let config = config(
        dir.path(),
        broker,
        &ca.display().to_string(),
        &cert.display().to_string(),
        &key.display().to_string(),
    );
    for (mode, who) in [
        (0o644, "its group and other users"),
        (0o604, "other users"),
        (0o640, "its group"),
    ] {
        chmod(&key, mode);
        let stderr = run_to_exit(&config, &[]);
        let wanted = [
            config.display().to_string(),
            "[mqtt]".to_string(),
            format!("key {}", key.display()),
            format!("mode {mode:04o} lets {who} read the private key"),
            format!("chmod 600 {}", key.display()),
            "LoadCredential=".to_string(),
        ];
        for w in &wanted {
            assert!(
                stderr.contains(w.as_str()),
                "mode {mode:o}: `{w}` missing from:\n{stderr}"
            );
        }
        let body = secret.lines().nth(1).unwrap_or("no key body");
        assert!(
            !stderr.contains(body),
            "the key itself was logged:\n{stderr}"
        );
    }
}

#[test]
fn ferry_run_reads_its_key_from_the_credentials_directory_and_nowhere_else() {
    let broker = Broker::start();
    let certs = pki().join("certs");
    let dir = tempfile::tempdir().unwrap();
    // As systemd lays out LoadCredential= for the service: read-only files in a private dir.
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    for (from, to) in [
        ("ca.crt", "ca.crt"),
        ("dev-1.crt", "device.crt"),
        ("dev-1.key", "device.key"),
    ] {
        std::fs::copy(certs.join(from), creds.join(to)).unwrap();
        chmod(&creds.join(to), 0o400);
    }
    chmod(&creds, 0o500);
    let config = config(
        dir.path(),
        &broker.url(),
        "credential:ca.crt",
        "credential:device.crt",
        "credential:device.key",
    );

    // Outside systemd, the config says what it needs.
    let stderr = run_to_exit(&config, &[]);
    for w in [
        &config.display().to_string(),
        "`ca = \"credential:ca.crt\"`",
        "$CREDENTIALS_DIRECTORY is not set",
        "LoadCredential=ca.crt:",
    ] {
        assert!(stderr.contains(w), "`{w}` missing from:\n{stderr}");
    }

    // With the directory, the agent connects with the key it holds.
    let before = broker
        .proc
        .stderr
        .count(&["New client connected", " as dev-1 ("]);
    let mut cmd = Command::new(workspace_binary("ferry"));
    cmd.args(["run", "--config"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", &creds);
    let agent = Proc::spawn(cmd, "ferry");
    let connected = broker.proc.stderr.wait_for_count(
        &["New client connected", " as dev-1 ("],
        before + 1,
        Duration::from_secs(120),
    );
    assert!(
        connected,
        "the agent did not connect with its credentials:\n{}\nbroker:\n{}",
        agent.stderr.text(),
        broker.proc.stderr.text()
    );
    assert!(
        agent.stdout.wait(Duration::from_secs(30), |l| l
            .iter()
            .any(|l| l.starts_with("ferry: ready"))),
        "{}",
        agent.stderr.text()
    );
}
