//! Truncated or corrupt model files at start, through the real binaries (issue 14, the
//! suite's bad-input part). What a process does is deliberate: a model file it would load that
//! cannot be loaded — cut anywhere, garbage, empty, or a broken manifest — stops `ferry run`
//! and `ferry-edge` at start, exit status 1, with an error naming the file; no panic, no
//! backtrace. One bad model among good ones stops it too: a process that started would answer
//! that model's requests with errors, or silently without it. `ferry check` reports the same
//! file, exit status 1, before anything is started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_tests::harness::{repo_root, workspace_binary, Proc};

/// What is done to a file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Keep only this many bytes.
    Truncate(usize),
    /// Replace it with text.
    Garbage,
}

/// A models folder whose files link to the shipped ones, but for `model/file`, which is a
/// damaged copy; the folder and the damaged file's path.
fn models_with(model: &str, file: &str, damage: Damage) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for m in ["digits", "efficientnet-lite0"] {
        let (from, to) = (repo_root().join("models").join(m), dir.path().join(m));
        std::fs::create_dir(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap().flatten() {
            std::os::unix::fs::symlink(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    let broken = dir.path().join(model).join(file);
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::remove_file(&broken).unwrap();
    let damaged = match damage {
        Damage::Truncate(n) => bytes[..n.min(bytes.len())].to_vec(),
        Damage::Garbage => b"this is not what it should be [[[\n".to_vec(),
    };
    std::fs::write(&broken, damaged).unwrap();
    (dir, broken)
}

fn len_of(model: &str, file: &str) -> usize {
    std::fs::metadata(repo_root().join("models").join(model).join(file))
        .unwrap()
        .len() as usize
}

/// Runs `cmd` until it exits (at most 120 s); asserts it failed with exit status 1, naming
/// `broken`, without a panic or a backtrace; returns its stderr.
fn fails_naming(mut cmd: Command, what: &str, broken: &Path) -> String {
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    let mut proc = Proc::spawn(cmd, "model-files");
    let status = proc.wait_exit(Duration::from_secs(120));
    proc.stderr.wait_eof();
    let stderr = proc.stderr.text();
    let status = status.unwrap_or_else(|| {
        panic!(
            "{what}: still running 120 s after start with {}:\n{stderr}",
            broken.display()
        )
    });
    assert_eq!(status.code(), Some(1), "{what}: {status:?}\n{stderr}");
    assert!(
        stderr.contains(&broken.display().to_string()),
        "{what}: {} not named:\n{stderr}",
        broken.display()
    );
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{what}: `{bad}` in:\n{stderr}");
    }
    stderr
}

fn board() -> PathBuf {
    repo_root().join("firmware-configs/x86-dev.toml")
}

fn ferry_run(dir: &Path, models: &Path) -> Command {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 0\n\
             [api]\ntcp = \"127.0.0.1:0\"\n[telemetry]\nenabled = false\n",
            board().display(),
            models.display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(workspace_binary("ferry"));
    cmd.args(["run", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG");
    cmd
}

/// `ferry-edge` serving `models` (name, precision) from `models_dir` (an empty list: every
/// model there); its broker is never reached (nothing listens on port 9).
fn ferry_edge(dir: &Path, models_dir: &Path, models: &[(&str, &str)]) -> Command {
    let mut toml = format!("models_dir = \"{}\"\n", models_dir.display());
    for (m, p) in models {
        toml.push_str(&format!("[models.{m}]\nprecisions = [\"{p}\"]\n"));
    }
    let certs = ferry_tests::harness::pki().join("certs");
    toml.push_str(&format!(
        "[mqtt]\nbroker = \"mqtts://127.0.0.1:9\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nclient_id = \"edge-a\"\n",
        certs.join("ca.crt").display(),
        certs.join("ferry-edge.crt").display(),
        certs.join("ferry-edge.key").display(),
    ));
    let config = dir.join("edge.toml");
    std::fs::write(&config, toml).unwrap();
    let mut cmd = Command::new(workspace_binary("ferry-edge"));
    cmd.arg("--config").arg(&config).env_remove("RUST_LOG");
    cmd
}

#[test]
fn a_corrupt_model_stops_ferry_run_at_start_naming_the_file() {
    let digits_int8 = len_of("digits", "digits.int8.onnx");
    for (what, model, file, damage) in [
        (
            "digits INT8 cut in half",
            "digits",
            "digits.int8.onnx",
            Damage::Truncate(digits_int8 / 2),
        ),
        (
            "digits INT8 short of its last byte",
            "digits",
            "digits.int8.onnx",
            Damage::Truncate(digits_int8 - 1),
        ),
        (
            "EfficientNet FP32 replaced by text",
            "efficientnet-lite0",
            "efficientnet-lite0.fp32.onnx",
            Damage::Garbage,
        ),
        (
            "digits FP32 empty",
            "digits",
            "digits.fp32.onnx",
            Damage::Truncate(0),
        ),
        (
            "digits' manifest not TOML",
            "digits",
            "manifest.toml",
            Damage::Garbage,
        ),
    ] {
        let (models, broken) = models_with(model, file, damage);
        let dir = tempfile::tempdir().unwrap();
        let stderr = fails_naming(ferry_run(dir.path(), models.path()), what, &broken);
        assert!(stderr.contains("ferry: error:"), "{what}:\n{stderr}");
        eprintln!("{what}: {}", stderr.lines().last().unwrap_or_default());
        // `ferry check` says the same before anything is started.
        let mut check = Command::new(workspace_binary("ferry"));
        check
            .args(["check", "--config"])
            .arg(board())
            .arg("--models")
            .arg(models.path());
        let stderr = fails_naming(check, &format!("ferry check, {what}"), &broken);
        assert!(stderr.contains("cannot be loaded"), "{what}:\n{stderr}");
    }
}

#[test]
fn a_corrupt_model_stops_ferry_edge_at_start_naming_the_file() {
    // Cut anywhere: the header, the graph, the weights, the last byte.
    let len = len_of("digits", "digits.fp32.onnx");
    for cut in [0, 1, 16, 100, len / 3, len / 2, len - 64, len - 1] {
        let (models, broken) = models_with("digits", "digits.fp32.onnx", Damage::Truncate(cut));
        let dir = tempfile::tempdir().unwrap();
        let what = format!("digits FP32 cut to {cut} of {len} bytes");
        fails_naming(
            ferry_edge(dir.path(), models.path(), &[("digits", "fp32")]),
            &what,
            &broken,
        );
    }
    // One bad model among good ones, listed or found in the folder.
    let (models, broken) = models_with(
        "efficientnet-lite0",
        "efficientnet-lite0.fp32.onnx",
        Damage::Garbage,
    );
    let dir = tempfile::tempdir().unwrap();
    let listed = [("digits", "fp32"), ("efficientnet-lite0", "fp32")];
    fails_naming(
        ferry_edge(dir.path(), models.path(), &listed),
        "one listed model of two",
        &broken,
    );
    fails_naming(
        ferry_edge(dir.path(), models.path(), &[]),
        "one model of the folder's two",
        &broken,
    );
    let (models, broken) = models_with("digits", "manifest.toml", Damage::Garbage);
    fails_naming(
        ferry_edge(dir.path(), models.path(), &[("digits", "fp32")]),
        "a manifest that is not TOML",
        &broken,
    );
}

/// POSTs the digit-7 PNG to a running agent's API at `addr`; the status code (0: no answer).
fn infer_digit(addr: &str) -> u16 {
    use std::io::{Read, Write};
    let png = std::fs::read(repo_root().join("models/images/digit-7.png")).unwrap();
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/infer/digits HTTP/1.1\r\nHost: ferry\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        png.len()
    );
    let mut answer = Vec::new();
    if s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(&png))
        .and_then(|()| s.read_to_end(&mut answer).map(drop))
        .is_err()
    {
        return 0;
    }
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_reload_with_a_corrupt_model_keeps_the_running_agent_serving() {
    // Start on good files (links to the shipped ones).
    let (models, broken) = models_with("digits", "digits.int8.onnx", Damage::Truncate(usize::MAX));
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Proc::spawn(ferry_run(dir.path(), models.path()), "ferry");
    let ready = |agent: &Proc, n: usize| {
        agent
            .stdout
            .wait_for_count(&["ferry: ready"], n, Duration::from_secs(120))
    };
    assert!(ready(&agent, 1), "{}", agent.stderr.text());
    let line = agent
        .stdout
        .all()
        .into_iter()
        .find(|l| l.starts_with("ferry: ready"))
        .unwrap();
    let addr = line
        .split_whitespace()
        .skip_while(|w| *w != "tcp")
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(infer_digit(&addr), 200);

    // A model file cut short under the running agent (a half-finished copy), then SIGHUP.
    let bytes = std::fs::read(&broken).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let hup = |agent: &Proc| {
        assert!(Command::new("kill")
            .args(["-HUP", &agent.id().to_string()])
            .status()
            .unwrap()
            .success())
    };
    hup(&agent);
    assert!(
        agent.stderr.wait_for(
            &[
                "SIGHUP",
                "keeping the running one",
                &broken.display().to_string()
            ],
            Duration::from_secs(60)
        ),
        "the reload's error does not name {}:\n{}",
        broken.display(),
        agent.stderr.text()
    );
    assert!(agent.is_running(), "{}", agent.stderr.text());
    assert_eq!(infer_digit(&addr), 200, "{}", agent.stderr.text());
    assert_eq!(
        agent.stdout.count(&["ferry: ready"]),
        1,
        "it restarted on a corrupt model"
    );

    // With the file whole again the reload goes through (a second ready line), and serves.
    std::fs::write(&broken, &bytes).unwrap();
    hup(&agent);
    assert!(ready(&agent, 2), "{}", agent.stderr.text());
    let line = agent
        .stdout
        .all()
        .into_iter()
        .rfind(|l| l.starts_with("ferry: ready"))
        .unwrap();
    let addr = line
        .split_whitespace()
        .skip_while(|w| *w != "tcp")
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(infer_digit(&addr), 200, "{}", agent.stderr.text());
    let stderr = agent.stderr.text();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
