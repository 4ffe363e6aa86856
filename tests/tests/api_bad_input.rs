//! Client errors through the local API never reach a path: an agent against a real Mosquitto
//! and a real `ferry-edge`, on a board emulated 4× slower so that the decider prefers the edge,
//! gets junk images and a tensor of the wrong shape. Each is answered 400 `invalid_input` at
//! once; none is sent to the edge or run locally, and the edge's estimates (failure
//! probability, breaker) are exactly what they were — so the next valid request still goes to
//! the edge.

use std::time::Duration;

use ferry_agent::client::{infer_query, status, ClientError, Endpoint};
use ferry_agent::daemon::AgentConfig;
use ferry_agent::Agent;
use ferry_tests::harness::{self, cert, repo_root, Broker, Edge, EdgeOptions};

const MODEL: &str = "efficientnet-lite0";

fn espresso(api: &Endpoint) -> ferry_agent::client::Answer {
    let jpeg = std::fs::read(repo_root().join("models/images/espresso.jpg")).unwrap();
    infer_query(api, MODEL, "", "image/jpeg", &jpeg).unwrap_or_else(|e| panic!("{e}"))
}

/// The edge target's entry of the status page.
fn edge_estimate(v: &serde_json::Value) -> serde_json::Value {
    v["targets"].as_array().and_then(|t| t.iter().find(|t| t["kind"] == "edge").cloned()).unwrap_or_else(|| panic!("no edge target: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_inputs_are_refused_before_any_path_and_charge_nothing_to_the_edge() {
    let broker = Broker::start();
    let edge = Edge::start(&broker, &EdgeOptions { models: vec![MODEL], ..EdgeOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 2\nemulate_slowdown = 4.0\n\
         [api]\ntcp = \"127.0.0.1:0\"\n\
         [mqtt]\nbroker = \"mqtts://127.0.0.1:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [telemetry]\nenabled = false\n",
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

    // The premise: a valid request goes to the edge.
    let mut on_edge = false;
    for _ in 0..20 {
        let api2 = api.clone();
        let a = tokio::task::spawn_blocking(move || espresso(&api2)).await.unwrap();
        if a.ran.starts_with("edge") {
            on_edge = true;
            break;
        }
    }
    assert!(on_edge, "no request went to the edge: the test's premise does not hold");
    // Let the last answer's bookkeeping settle, then take the picture.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let api2 = api.clone();
    let before = tokio::task::spawn_blocking(move || status(&api2).unwrap()).await.unwrap();

    let junk: Vec<(&str, &str, Vec<u8>)> = vec![
        ("", "image/jpeg", b"not a jpeg at all".to_vec()),
        ("", "image/png", vec![0x89, b'P', b'N', b'G', 0, 0, 0, 0]),
        ("", "image/jpeg", vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]),
        ("shape=1,3,8,8", "application/octet-stream", vec![0u8; 3 * 64 * 4]),
    ];
    for (query, content_type, body) in junk {
        let api2 = api.clone();
        let r = tokio::task::spawn_blocking(move || infer_query(&api2, MODEL, query, content_type, &body)).await.unwrap();
        match r {
            Err(ClientError::Status { status: 400, message }) => eprintln!("{content_type} {query}: 400 {message}"),
            other => panic!("{content_type} {query}: expected 400 invalid_input, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let api2 = api.clone();
    let after = tokio::task::spawn_blocking(move || status(&api2).unwrap()).await.unwrap();
    let (b, a) = (edge_estimate(&before), edge_estimate(&after));
    // A probe may land in between (a success only lowers it); three junk images charged to the
    // edge took it from ~0 to 0.49.
    let (fb, fa) = (b["failure_probability"].as_f64().unwrap(), a["failure_probability"].as_f64().unwrap());
    assert!(fa <= fb + 0.05, "junk was charged to the edge: failure probability {fb} → {fa}");
    assert_eq!(a["tripped"], false, "{a}");
    assert_eq!(after["answers"]["edge"], before["answers"]["edge"], "{after}");
    assert_eq!(after["answers"]["local"], before["answers"]["local"], "{after}");
    assert_eq!(after["answers"]["failed"], before["answers"]["failed"], "{after}");
    assert_eq!(after["fallbacks"], before["fallbacks"], "{after}");
    assert_eq!(after["local_runs"]["compute_ms"], before["local_runs"]["compute_ms"], "junk took the local runner: {after}");

    // And the edge is still the preferred path.
    let api2 = api.clone();
    let next = tokio::task::spawn_blocking(move || espresso(&api2)).await.unwrap();
    assert!(next.ran.starts_with("edge"), "{next:?}");
    agent.stop().await;
    drop(edge);
}
