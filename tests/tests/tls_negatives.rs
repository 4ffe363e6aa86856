//! TLS negatives with the real processes (issue 14, the suite's security part): an expired
//! device certificate is refused by the broker, and the real agent (`ferry run`), dialing a
//! broker whose certificate has expired or does not name the address dialed, refuses it with
//! an error in its log that names the reason; the real `ferry-edge` refuses the expired broker
//! too. No client certificate, another CA, plain TCP and TLS 1.2 are in `offload_security.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_protocol::DeviceId;
use ferry_tests::harness::{
    self, chmod, pki, repo_root, shared_tempdir, workspace_binary, Broker, BrokerOptions, Proc,
};
use ferry_transport::mqtt::{MqttOffloader, OffloadError};

/// The broker's line for a device that got in.
const CONNECTED: [&str; 2] = ["New client connected", " as dev-1 ("];

/// `ferry run` for `dev-1` against `broker_url` with the given CA, certificate and key, its API
/// on a free loopback port, no telemetry; killed when dropped.
fn agent(dir: &Path, broker_url: &str, ca: &Path, cert: &Path, key: &Path) -> Proc {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 0\n\
             [api]\ntcp = \"127.0.0.1:0\"\n\
             [mqtt]\nbroker = \"{broker_url}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             connect_timeout_ms = 2000\nreconnect_min_ms = 100\nreconnect_max_ms = 500\n\
             [telemetry]\nenabled = false\n",
            harness::dev_board(dir, broker_url).display(),
            repo_root().join("models").display(),
            ca.display(),
            cert.display(),
            key.display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(workspace_binary("ferry"));
    cmd.args(["run", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG");
    Proc::spawn(cmd, "ferry")
}

/// Waits until the agent says it runs local-only because the edge link is not ready (it
/// waits 5 s for the broker after loading its models); that line, or a panic with its log.
fn not_ready_line(agent: &Proc) -> String {
    let needle = "edge link not ready";
    assert!(
        agent.stderr.wait_for(&[needle], Duration::from_secs(90)),
        "the agent never said its edge link is not ready:\n{}",
        agent.stderr.text()
    );
    let line = agent
        .stderr
        .all()
        .into_iter()
        .find(|l| l.contains(needle))
        .unwrap_or_default();
    eprintln!("the agent said: {line}");
    line
}

/// A copy of the test PKI's folder whose broker certificate and key are the expired pair.
fn expired_broker_certs() -> tempfile::TempDir {
    let dir = shared_tempdir();
    let from = pki().join("certs");
    for entry in std::fs::read_dir(&from).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    for ext in ["crt", "key"] {
        std::fs::copy(
            from.join(format!("expired-broker.{ext}")),
            dir.path().join(format!("broker.{ext}")),
        )
        .unwrap();
        chmod(&dir.path().join(format!("broker.{ext}")), 0o644);
    }
    dir
}

fn certs_of(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join("ca.crt"),
        dir.join("dev-1.crt"),
        dir.join("dev-1.key"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_device_certificate_is_refused_by_the_broker() {
    let broker = Broker::start();
    // In process first: the refusal is a refusal (not a timeout), and only the dates differ
    // from a certificate that gets in.
    let expired = broker.config_for("expired-dev-1");
    let result = MqttOffloader::connect(
        &expired,
        DeviceId::new("dev-1").unwrap(),
        Duration::from_secs(10),
    )
    .await;
    match result {
        Err(OffloadError::Refused(why)) => eprintln!("refused as expected: {why}"),
        other => panic!("expected a refusal of the expired certificate, got {other:?}"),
    }
    drop(broker.device("dev-1").await);
    let before = broker.proc.stderr.count(&CONNECTED);

    // The real agent with the expired certificate: refused, and its log says why.
    let dir = tempfile::tempdir().unwrap();
    let certs = pki().join("certs");
    let agent = agent(
        dir.path(),
        &broker.url(),
        &certs.join("ca.crt"),
        &certs.join("expired-dev-1.crt"),
        &certs.join("expired-dev-1.key"),
    );
    let line = not_ready_line(&agent);
    assert!(
        line.contains("refused") && line.contains("CertificateExpired"),
        "not a clear reason: {line}"
    );
    assert_eq!(
        broker.proc.stderr.count(&CONNECTED),
        before,
        "the broker let the expired certificate in:\n{}",
        broker.proc.stderr.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_broker_certificate_is_refused_by_the_agent_and_the_edge() {
    let certs = expired_broker_certs();
    let broker = Broker::start_with(&BrokerOptions {
        certs: Some(certs.path().to_path_buf()),
        ..BrokerOptions::default()
    });
    let (ca, cert, key) = certs_of(certs.path());
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), &broker.url(), &ca, &cert, &key);
    let line = not_ready_line(&agent);
    assert!(
        line.contains("refused") && line.contains("certificate expired"),
        "not a clear reason: {line}"
    );
    assert_eq!(
        broker.proc.stderr.count(&CONNECTED),
        0,
        "{}",
        broker.proc.stderr.text()
    );

    // The edge, a client of the same broker, refuses it too (and never says it is ready).
    let edge_toml = dir.path().join("edge.toml");
    std::fs::write(
        &edge_toml,
        format!(
            "share_group = \"ferry-edges\"\nmodels_dir = \"{}\"\n[models.digits]\nprecisions = [\"fp32\"]\n\
             [mqtt]\nbroker = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nclient_id = \"edge-a\"\n\
             reconnect_min_ms = 100\nreconnect_max_ms = 500\n",
            repo_root().join("models").display(),
            broker.url(),
            ca.display(),
            certs.path().join("ferry-edge.crt").display(),
            certs.path().join("ferry-edge.key").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(workspace_binary("ferry-edge"));
    cmd.arg("--config").arg(&edge_toml).env("RUST_LOG", "info");
    let edge = Proc::spawn(cmd, "ferry-edge");
    assert!(
        edge.stderr.wait_for(
            &["broker connection failed", "certificate expired"],
            Duration::from_secs(60)
        ),
        "the edge did not say the broker's certificate expired:\n{}",
        edge.stderr.text()
    );
    assert_eq!(
        edge.stderr.count(&["ready for requests"]),
        0,
        "{}",
        edge.stderr.text()
    );
    assert_eq!(
        broker
            .proc
            .stderr
            .count(&["New client connected", " as ferry-edge ("]),
        0,
        "{}",
        broker.proc.stderr.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_that_does_not_name_the_address_dialed_is_refused_by_the_agent() {
    // The test PKI's broker certificate names 127.0.0.1 and localhost; this broker listens on
    // 127.0.0.2.
    let broker = Broker::start_with(&BrokerOptions {
        bind: Some("127.0.0.2".into()),
        ..BrokerOptions::default()
    });
    let certs = pki().join("certs");
    let (ca, cert, key) = certs_of(&certs);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path(), &broker.url(), &ca, &cert, &key);
    let line = not_ready_line(&agent);
    assert!(
        line.contains("refused")
            && line.contains("not valid for name")
            && line.contains("127.0.0.2"),
        "not a clear reason: {line}"
    );
    assert_eq!(
        broker.proc.stderr.count(&CONNECTED),
        0,
        "{}",
        broker.proc.stderr.text()
    );

    // The name is the only difference: a broker certificate that does name 127.0.0.2, on the
    // same address, is accepted.
    let named = shared_tempdir();
    harness::make_pki(
        &named.path().join("certs"),
        &["--broker-san", "IP:127.0.0.2"],
        &harness::DEVICES,
    );
    let good = Broker::start_with(&BrokerOptions {
        bind: Some("127.0.0.2".into()),
        certs: Some(named.path().join("certs")),
        ..BrokerOptions::default()
    });
    drop(good.device("dev-1").await);
}
