//! `placement=local-only` never leaves the board: an agent against a real Mosquitto and a real
//! `ferry-edge`, on a board emulated 4× slower so that the decider prefers the edge, sends
//! local-only requests; every answer says it ran local with that constraint, and the edge
//! answers none of them (its log counts every request it answers), while requests without the
//! constraint go to the edge before and after.

use std::time::Duration;

use ferry_agent::client::{infer_query, Endpoint};
use ferry_agent::daemon::AgentConfig;
use ferry_agent::Agent;
use ferry_tests::harness::{self, cert, repo_root, Broker, Edge, EdgeOptions};

const MODEL: &str = "efficientnet-lite0";
const ANSWERED: &[&str] = &["answered ok"];

fn send(api: &Endpoint, query: &'static str) -> ferry_agent::client::Answer {
    let jpeg = std::fs::read(repo_root().join("models/images/espresso.jpg")).unwrap();
    infer_query(api, MODEL, query, "image/jpeg", &jpeg).unwrap_or_else(|e| panic!("{query}: {e}"))
}

/// Sends `placement=any` requests until one runs on the edge (at most `max`).
async fn until_on_edge(api: &Endpoint, max: usize) -> usize {
    for i in 0..max {
        let api2 = api.clone();
        let a = tokio::task::spawn_blocking(move || send(&api2, "")).await.unwrap();
        eprintln!("any #{i}: ran {} in {:.1} ms", a.ran, a.latency_ms);
        if a.ran.starts_with("edge") {
            return i + 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no request went to the edge in {max}: the test's premise (the edge is preferred) does not hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_requests_never_reach_the_edge_while_the_edge_is_preferred() {
    let broker = Broker::start();
    let edge = Edge::start(&broker, &EdgeOptions { models: vec![MODEL], ..EdgeOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 2\nemulate_slowdown = 4.0\n\
         [api]\ntcp = \"127.0.0.1:0\"\n\
         [mqtt]\nbroker = \"mqtts://127.0.0.1:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [decide]\nprobe_after_ms = 200\n",
        harness::dev_board(dir.path(), &format!("mqtts://127.0.0.1:{}", broker.port)).display(),
        repo_root().join("models").display(),
        broker.port,
        cert("ca.crt").display(),
        cert("dev-1.crt").display(),
        cert("dev-1.key").display(),
    );
    let config = AgentConfig::parse(&text, &dir.path().join("agent.toml")).expect("agent config");
    let agent = Agent::start(config).await.expect("agent starts");
    let api = Endpoint::Tcp(agent.api_tcp().unwrap());

    // The premise: without the constraint, the decider sends this request to the edge.
    until_on_edge(&api, 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = edge.proc.stderr.count(ANSWERED);
    assert!(before >= 1, "the edge logs what it answers: {}", edge.proc.stderr.text());

    for i in 0..6 {
        let api2 = api.clone();
        let a = tokio::task::spawn_blocking(move || send(&api2, "placement=local-only&deadline_ms=5000")).await.unwrap();
        eprintln!("local-only #{i}: ran {} in {:.1} ms", a.ran, a.latency_ms);
        assert_eq!(a.ran, "local", "{a:?}");
        assert_eq!(a.fallback, None, "{a:?}");
        let c = a.constraints.clone().unwrap_or_default();
        assert_eq!((c["placement"].as_str(), a.status.as_deref()), (Some("local-only"), Some("ok")), "{a:?}");
    }
    // Give the edge's log time to show anything that reached it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(edge.proc.stderr.count(ANSWERED), before, "a local-only request reached the edge");

    // And the edge was still the preferred path all along.
    until_on_edge(&api, 10).await;
    agent.stop().await;
}
