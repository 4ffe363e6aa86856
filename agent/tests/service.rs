//! The agent as a library: `ferry_agent::run(config, shutdown)` composes the whole agent
//! in-process (models, decision, local API, sensor loop) and stops when `shutdown` resolves —
//! what `ferry run`, the demo and tests build on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_agent::client::{infer, Endpoint};
use ferry_agent::daemon::AgentConfig;
use ferry_agent::Agent;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(dir: &Path) -> AgentConfig {
    let text = format!(
        "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 1\n[api]\ntcp = \"127.0.0.1:0\"\n",
        repo().join("firmware-configs/x86-dev.toml").display(),
        repo().join("models").display(),
    );
    AgentConfig::parse(&text, &dir.join("agent.toml")).expect("agent config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_agent_serves_its_api_until_it_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(config(dir.path())).await.expect("agent starts");
    let addr = agent.api_tcp().expect("a TCP API");
    let png = std::fs::read(repo().join("models/images/digit-7.png")).unwrap();
    let endpoint = Endpoint::Tcp(addr);
    let answer = tokio::task::spawn_blocking(move || infer(&endpoint, "digits", "image/png", &png, Some(2_000)))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(answer.top[0].label, "7", "{answer:?}");
    assert!(answer.ran.starts_with("local"), "no edge configured: {}", answer.ran);

    agent.stop().await;
    // Stopped: the socket no longer accepts.
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the API still accepts connections after stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_when_its_shutdown_future_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ferry_agent::run(config(dir.path()), async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!running.is_finished(), "run returned before its shutdown");
    tx.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), running).await.expect("run ends after shutdown");
    ended.unwrap().expect("run ends cleanly");
}
