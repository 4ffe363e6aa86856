//! The real testbed of issue 5: the agent (`ferry run`, adaptive policy) in a *device* network
//! namespace, a real Mosquitto (TLS 1.3, client certificates, the shipped ACL) and a real
//! `ferry-edge` in an *edge* namespace, joined by a veth pair whose uplink the kernel's `tbf`
//! shapes. A client sends images through the agent's Unix-socket API while the test throttles
//! the link, starts and stops background CPU load on the device side, and restores the link.
//! The agent must move to local within a few requests of the throttle and back to the edge
//! after the recovery, answering every request exactly once.
//!
//! The device is emulated as a Pi-class board: the agent's `emulate_slowdown = 4` stretches its
//! local compute 4× (this VM is about that much faster than a Raspberry Pi 4), so that a fast
//! link makes offloading worth it, as it is on a real board. The edge runs at this machine's
//! speed. Both share this machine's two cores, so the device's background load slows the edge
//! too.
//!
//! Needs root (network namespaces, `tc`); CI runs as root. One command:
//! `cargo test --release -p ferry-tests --test testbed -- --nocapture` (prints the run's log).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_agent::client::{self, infer, Endpoint};
use ferry_tests::harness::{make_pki, program, render_broker_config, repo_root, shared_tempdir, workspace_binary, Edge, EdgeOptions, Proc};
use ferry_tests::netns::{Side, Testbed, EDGE_IP};

const FAST_KBIT: u32 = 100_000;
const SLOW_KBIT: u32 = 400;
const PORT: u16 = 8883;
const MODEL: &str = "efficientnet-lite0";
const IMAGES: [&str; 2] = ["models/images/espresso.jpg", "models/images/cat.jpg"];
/// Every request's deadline: the first offload over the throttled link cannot make it, so the
/// scheduler must fall back to local in time.
const DEADLINE_MS: u32 = 1500;

/// One answered request.
#[derive(Debug, Clone)]
struct Row {
    phase: &'static str,
    n: usize,
    request_id: u64,
    ran: String,
    fallback: Option<String>,
    latency_ms: f64,
}

impl Row {
    fn on_edge(&self) -> bool {
        self.ran.starts_with("edge")
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn write_configs(dir: &Path, certs: &Path) -> std::path::PathBuf {
    let board = dir.join("board.toml");
    std::fs::write(
        &board,
        "[board]\nname = \"testbed-device\"\ndescription = \"the testbed's device namespace\"\n\
         [[sensors]]\nname = \"cpu\"\ndriver = \"cpu\"\ninterval_ms = 200\n\
         [thermal]\nzone = \"testbed\"\nthrottle_point_c = 85.0\nset_point_c = 78.0\n\
         [energy]\nradio_nj_per_byte = 5.0\nidle_mw = 2000.0\n\
         [[models]]\nname = \"efficientnet-lite0\"\nprecisions = [\"fp32\", \"int8\"]\n\
         [[targets]]\nkind = \"local\"\nname = \"local-fp32\"\nmodel = \"efficientnet-lite0\"\nprecision = \"fp32\"\n\
         [[targets]]\nkind = \"local\"\nname = \"local-int8\"\nmodel = \"efficientnet-lite0\"\nprecision = \"int8\"\npriority = 1\n\
         [[targets]]\nkind = \"edge\"\nname = \"edge\"\nendpoint = \"mqtts://10.201.0.2:8883\"\npriority = 2\n",
    )
    .expect("write board.toml");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 2\nemulate_slowdown = 4.0\n\
             [api]\nunix = \"{}\"\n\
             [mqtt]\nbroker = \"mqtts://{EDGE_IP}:{PORT}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [decide]\npolicy = \"adaptive\"\n",
            board.display(),
            repo_root().join("models").display(),
            dir.join("api.sock").display(),
            certs.join("ca.crt").display(),
            certs.join("dev-1.crt").display(),
            certs.join("dev-1.key").display(),
        ),
    )
    .expect("write agent.toml");
    config
}

/// Sends `count` requests one after another (100 ms apart), recording each answer.
fn phase(api: &Endpoint, name: &'static str, count: usize, rows: &mut Vec<Row>, images: &[Vec<u8>]) {
    for n in 0..count {
        let body = &images[rows.len() % images.len()];
        let a = infer(api, MODEL, "image/jpeg", body, Some(DEADLINE_MS))
            .unwrap_or_else(|e| panic!("{name} request {n}: no answer: {e}\nso far: {rows:#?}"));
        let row = Row { phase: name, n, request_id: a.request_id, ran: a.ran, fallback: a.fallback, latency_ms: a.latency_ms };
        eprintln!(
            "testbed: {:<14} #{:<2} id {:<3} ran {:<12} {:>8.1} ms{}",
            row.phase,
            row.n,
            row.request_id,
            row.ran,
            row.latency_ms,
            row.fallback.as_deref().map(|f| format!("  (fallback: {f})")).unwrap_or_default()
        );
        rows.push(row);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Background load on the device side: one busy process per core, each stopping by itself
/// after 90 s (bash's SECONDS, no forks) if the test does not kill it first.
fn cpu_load(tb: &Testbed) -> Vec<Proc> {
    (0..2)
        .map(|_| {
            let mut cmd = tb.command(Side::Device, "bash");
            cmd.args(["-c", "while [ $SECONDS -lt 90 ]; do :; done"]);
            Proc::spawn(cmd, "cpu-load")
        })
        .collect()
}

fn rows_of<'a>(rows: &'a [Row], phase: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r.phase == phase).collect()
}

#[test]
fn the_agent_moves_to_local_when_the_link_is_throttled_and_back_when_it_recovers() {
    assert!(
        is_root(),
        "the testbed needs root for network namespaces and tc (CI runs as root); run it as root"
    );
    // Declared first, dropped last: every process inside is killed before the namespaces go.
    let tb = Testbed::create().unwrap_or_else(|e| panic!("cannot build the testbed: {e}"));
    tb.shape(Side::Device, FAST_KBIT).expect("shape uplink");
    tb.shape(Side::Edge, FAST_KBIT).expect("shape downlink");

    // A PKI whose broker certificate names the edge side's address.
    let dir = shared_tempdir();
    let certs = dir.path().join("certs");
    make_pki(&certs, &["--broker-san", &format!("IP:{EDGE_IP}")], &["dev-1"]);

    // The broker, from the shipped template and ACL, listening on the edge side.
    let conf = render_broker_config(dir.path(), &certs, PORT, EDGE_IP);
    let mut mosquitto = tb.command(Side::Edge, program("mosquitto"));
    mosquitto.arg("-c").arg(&conf);
    let broker = Proc::spawn(mosquitto, "mosquitto");

    // The edge server beside it (its own connection to the broker stays inside the edge
    // namespace; only the device's traffic crosses the shaped link).
    let url = format!("mqtts://{EDGE_IP}:{PORT}");
    let edge_options = EdgeOptions { models: vec![MODEL], workers: 1, ..EdgeOptions::default() };
    let _edge = Edge::start_with(&url, &certs, &edge_options, |bin| tb.command(Side::Edge, bin), &broker.stderr);

    // The agent on the device side.
    let work = tempfile::tempdir().expect("tempdir");
    let config = write_configs(work.path(), &certs);
    let mut cmd = tb.command(Side::Device, workspace_binary("ferry"));
    cmd.args(["run", "--config"]).arg(&config).env("RUST_LOG", "info,ferry_agent=debug");
    let api = Endpoint::Unix(work.path().join("api.sock"));
    let mut agent = Proc::spawn(cmd, "ferry");
    let until = Instant::now() + Duration::from_secs(120);
    while agent.stderr.count(&["edge link ready"]) == 0 {
        assert!(
            Instant::now() < until && agent.is_running(),
            "the agent never connected to the broker across the link:\n{}",
            agent.stderr.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = Instant::now() + Duration::from_secs(30);
    while !work.path().join("api.sock").exists() {
        assert!(Instant::now() < ready, "the agent never opened its API:\n{}", agent.stderr.text());
        std::thread::sleep(Duration::from_millis(100));
    }

    let estimates = |when: &str| match client::status(&api) {
        Ok(v) => eprintln!("testbed: the agent's estimates {when}: {}", v["targets"]),
        Err(e) => panic!("status: {e}"),
    };
    estimates("after start-up");
    let images: Vec<Vec<u8>> = IMAGES.iter().map(|p| std::fs::read(repo_root().join(p)).expect("image")).collect();
    let mut rows = Vec::new();
    eprintln!("testbed: link {FAST_KBIT} kbit/s both ways, device idle");
    phase(&api, "fast", 15, &mut rows, &images);
    eprintln!("testbed: uplink throttled to {SLOW_KBIT} kbit/s");
    tb.shape(Side::Device, SLOW_KBIT).expect("throttle");
    phase(&api, "throttled", 12, &mut rows, &images);
    eprintln!("testbed: background CPU load started on the device (both cores)");
    let load = cpu_load(&tb);
    phase(&api, "throttled+load", 8, &mut rows, &images);
    eprintln!("testbed: uplink restored to {FAST_KBIT} kbit/s, load still on");
    tb.shape(Side::Device, FAST_KBIT).expect("restore");
    phase(&api, "restored+load", 12, &mut rows, &images);
    drop(load);
    eprintln!("testbed: background load stopped");
    phase(&api, "restored", 8, &mut rows, &images);

    estimates("at the end");
    eprintln!("testbed: the agent's own log of the run:");
    for line in agent.stderr.text().lines().filter(|l| l.contains("answered") || l.contains("WARN")) {
        eprintln!("  {line}");
    }

    // Exactly one answer per request: 55 answers with 55 distinct request ids (each call
    // above got one HTTP answer, and a failed one would have panicked).
    let mut ids: Vec<u64> = rows.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "request ids repeat: {rows:#?}");

    // On the fast link the (4× slower) device offloads.
    let fast = rows_of(&rows, "fast");
    assert!(fast[fast.len() - 5..].iter().all(|r| r.on_edge()), "not offloading on the fast link: {fast:#?}");

    // Throttled: local within a few requests (the first one may still go out and fall back).
    let throttled: Vec<&Row> = rows.iter().filter(|r| r.phase.starts_with("throttled")).collect();
    let first_local = throttled.iter().position(|r| !r.on_edge()).expect("never moved to local");
    assert!(first_local <= 2, "took {} requests to move to local: {throttled:#?}", first_local + 1);
    let stayed = throttled[first_local..].iter().filter(|r| !r.on_edge()).count();
    let after = throttled.len() - first_local;
    assert!(stayed * 10 >= after * 9, "went back to the throttled edge {} times of {after}: {throttled:#?}", after - stayed);

    // Restored: back to the edge within a few requests, and staying there.
    let restored: Vec<&Row> = rows.iter().filter(|r| r.phase.starts_with("restored")).collect();
    let first_edge = restored.iter().position(|r| r.on_edge()).expect("never went back to the edge");
    assert!(first_edge <= 5, "took {} requests to go back to the edge: {restored:#?}", first_edge + 1);
    let tail = &restored[restored.len() - 8..];
    assert!(tail.iter().all(|r| r.on_edge()), "not on the edge at the end: {restored:#?}");
    drop(agent);
}
