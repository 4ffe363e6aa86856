//! `ferry demo`: Ferry's main job on an embedded default, on one machine with nothing
//! installed. An in-process MQTT broker (rumqttd) and edge server (ferry-edge) on loopback, the
//! agent reaching them through an emulated link, and a workload of EfficientNet-Lite0 requests
//! while the link and the CPU load change, run once per policy; then a summary table.
//!
//! The device is emulated as a slower board (local runs take `slowdown` × their real time,
//! as a Raspberry Pi 4 takes several times longer than this machine's core); the edge runs at
//! this machine's speed. The link is a pacing proxy ([`link`]); the CPU load is real (a
//! spinning thread), and the agent sees it through its CPU probe.
//!
//! # Layout
//! - [`broker`]: rumqttd in-process.
//! - [`link`]: the emulated link.
//! - [`load`]: the background CPU load.

pub mod broker;
pub mod link;
pub mod load;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_decide::Ran;
use ferry_protocol::{ImageFormat, Input};
use tokio::sync::watch;

use crate::daemon::{AgentConfig, Submission};
use crate::service::Agent;

/// One phase of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// What it stands for.
    pub name: &'static str,
    /// Link bandwidth, Mbit/s.
    pub mbps: f64,
    /// One-way delay, ms.
    pub delay_ms: f64,
    /// Whether a background job loads the CPU.
    pub cpu_load: bool,
}

/// The scenario: a device that moves between good Wi-Fi, a collapsed link and a congested one,
/// with a background job at times.
pub const PHASES: [Phase; 4] = [
    Phase { name: "good Wi-Fi, idle CPU", mbps: 80.0, delay_ms: 2.0, cpu_load: false },
    Phase { name: "link collapse", mbps: 1.5, delay_ms: 40.0, cpu_load: false },
    Phase { name: "good Wi-Fi, busy CPU", mbps: 80.0, delay_ms: 2.0, cpu_load: true },
    Phase { name: "collapse, busy CPU", mbps: 1.5, delay_ms: 40.0, cpu_load: true },
];

/// The policies compared.
pub const POLICIES: [&str; 3] = ["adaptive", "always-local", "always-offload"];

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Requests per phase.
    pub per_phase: u32,
    /// Local slowdown emulating a slower board.
    pub slowdown: f64,
    /// Deadline per request, ms.
    pub deadline_ms: u32,
    /// The model folder.
    pub models: PathBuf,
}

/// One policy's results.
#[derive(Debug, Clone, Default)]
pub struct PolicyResult {
    /// The policy.
    pub policy: String,
    /// Every request's latency, ms.
    pub latencies_ms: Vec<f64>,
    /// Answers from local.
    pub local: u32,
    /// Answers from the edge.
    pub edge: u32,
    /// Error answers.
    pub failed: u32,
    /// Answers later than the deadline.
    pub misses: u32,
    /// Fallbacks from the edge to local.
    pub fallbacks: u32,
}

impl PolicyResult {
    /// Mean latency, ms.
    pub fn mean(&self) -> f64 {
        self.latencies_ms.iter().sum::<f64>() / self.latencies_ms.len().max(1) as f64
    }

    /// 95th percentile latency, ms.
    pub fn p95(&self) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0)
    }
}

/// Runs the whole demo, printing as it goes; returns each policy's results.
pub async fn run(opts: &DemoOptions) -> Result<Vec<PolicyResult>, String> {
    let started = Instant::now();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let broker = broker::start(broker::free_port()?)?;
    let shape = Arc::new(link::Shape::default());
    shape.set(PHASES[0].mbps, PHASES[0].delay_ms);
    let link_addr = link::start(broker, shape.clone()).await.map_err(|e| e.to_string())?;
    println!("ferry demo: broker (rumqttd) on {broker}, emulated link on {link_addr}, device = this machine slowed {}x", opts.slowdown);

    let (stop_tx, stop_rx) = watch::channel(false);
    let edge = edge_config(broker, &opts.models)?;
    let mut edge_stop = stop_rx.clone();
    let edge_task = tokio::spawn(ferry_edge::run(edge, async move {
        let _ = edge_stop.wait_for(|s| *s).await;
    }));
    let hog = load::CpuLoad::start();
    let images = [read(&opts.models.join("images/cat.jpg"))?, read(&opts.models.join("images/espresso.jpg"))?];

    let mut results = Vec::new();
    for policy in POLICIES {
        let config = agent_config(dir.path(), policy, link_addr, opts)?;
        // The agent as `ferry run` composes it (API, sensor loop), one per policy, stopped before
        // the next starts so that only one agent at a time holds a connection.
        let agent = Agent::start(config).await.map_err(|e| e.to_string())?;
        let daemon = agent.daemon().clone();
        if let Some(link) = &daemon.offloader {
            link.wait_ready(Duration::from_secs(10)).await.map_err(|e| format!("device → broker: {e}"))?;
        }
        // Let the edge subscribe before the first policy sends anything.
        tokio::time::sleep(Duration::from_millis(if results.is_empty() { 1500 } else { 200 })).await;
        let mut r = PolicyResult { policy: policy.to_string(), ..Default::default() };
        for phase in PHASES {
            shape.set(phase.mbps, phase.delay_ms);
            hog.set(phase.cpu_load);
            let mut marks = String::new();
            let before = r.latencies_ms.len();
            for i in 0..opts.per_phase {
                let image = &images[i as usize % images.len()];
                let input = Input::Image { format: ImageFormat::Jpeg, bytes: image.clone() };
                let s = Submission { model: "efficientnet-lite0".to_string(), input, deadline_ms: Some(opts.deadline_ms) };
                let outcome = daemon.submit(s).await.map_err(|e| e.to_string())?;
                let a = outcome.answer;
                let ms = a.latency_us as f64 / 1e3;
                r.latencies_ms.push(ms);
                if ms > f64::from(opts.deadline_ms) {
                    r.misses += 1;
                }
                if a.fallback.is_some() {
                    r.fallbacks += 1;
                }
                let mark = match (a.ok, a.ran) {
                    (false, _) | (_, Ran::Nowhere) => {
                        r.failed += 1;
                        'x'
                    }
                    (true, Ran::Local(_)) => {
                        r.local += 1;
                        'L'
                    }
                    (true, Ran::Edge(_)) => {
                        r.edge += 1;
                        'E'
                    }
                };
                marks.push(mark);
            }
            let lat = &r.latencies_ms[before..];
            let mean = lat.iter().sum::<f64>() / lat.len().max(1) as f64;
            println!(
                "  {policy:<15} {:<22} {:>5.1} Mbit/s {:>3} ms  [{marks:<w$}]  mean {mean:>6.1} ms",
                phase.name,
                phase.mbps,
                phase.delay_ms,
                w = opts.per_phase as usize
            );
        }
        drop(daemon);
        agent.stop().await;
        results.push(r);
    }
    hog.set(false);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), edge_task).await;
    print_summary(&results, opts, started.elapsed());
    Ok(results)
}

fn print_summary(results: &[PolicyResult], opts: &DemoOptions, took: Duration) {
    println!();
    println!("summary ({} requests per policy, deadline {} ms, L = ran locally, E = ran on the edge):", opts.per_phase as usize * PHASES.len(), opts.deadline_ms);
    println!("  {:<15} {:>9} {:>9} {:>6} {:>6} {:>7} {:>10} {:>7}", "policy", "mean ms", "p95 ms", "local", "edge", "failed", "fallbacks", "misses");
    for r in results {
        println!(
            "  {:<15} {:>9.1} {:>9.1} {:>6} {:>6} {:>7} {:>10} {:>7}",
            r.policy,
            r.mean(),
            r.p95(),
            r.local,
            r.edge,
            r.failed,
            r.fallbacks,
            r.misses
        );
    }
    let adaptive = results.iter().find(|r| r.policy == "adaptive").map(PolicyResult::mean);
    let best_static = results.iter().filter(|r| r.policy != "adaptive").map(PolicyResult::mean).fold(f64::INFINITY, f64::min);
    if let Some(a) = adaptive {
        println!("  adaptive mean / best static mean = {:.2}", a / best_static);
    }
    println!("took {:.1} s", took.as_secs_f64());
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn edge_config(broker: std::net::SocketAddr, models: &Path) -> Result<ferry_edge::EdgeConfig, String> {
    let text = format!(
        "share_group = \"demo\"\nmodels_dir = \"{}\"\nworkers = 1\nqueue_capacity = 16\nmax_batch = 4\n[models.efficientnet-lite0]\nprecisions = [\"fp32\"]\n[mqtt]\nbroker = \"mqtt://{broker}\"\ninsecure = true\n",
        models.display()
    );
    ferry_edge::EdgeConfig::parse(&text, Path::new("<demo edge config>")).map_err(|e| e.to_string())
}

fn agent_config(dir: &Path, policy: &str, link: std::net::SocketAddr, opts: &DemoOptions) -> Result<AgentConfig, String> {
    let board = dir.join("demo-board.toml");
    std::fs::write(&board, DEMO_BOARD).map_err(|e| e.to_string())?;
    let text = format!(
        "[agent]\ndevice_id = \"demo-{policy}\"\nboard = \"{}\"\nmodels = \"{}\"\nemulate_slowdown = {:.1}\nwarmup_runs = 2\n[api]\nunix = \"{}\"\n[decide]\npolicy = \"{policy}\"\n[mqtt]\nbroker = \"mqtt://{link}\"\ninsecure = true\n[telemetry]\nspool_dir = \"{}\"\n",
        board.display(),
        opts.models.display(),
        opts.slowdown,
        dir.join(format!("{policy}.sock")).display(),
        dir.join(format!("spool-{policy}")).display()
    );
    AgentConfig::parse(&text, &dir.join("agent.toml")).map_err(|e| e.to_string())
}

/// The demo device: the CPU probe (so the agent sees the background load), one local variant,
/// one edge.
const DEMO_BOARD: &str = r#"
[board]
name = "demo-device"
description = "this machine, emulating a slower board"

[[sensors]]
name = "cpu"
driver = "cpu"
interval_ms = 250

[thermal]
zone = "none"
throttle_point_c = 90.0
set_point_c = 80.0

[[models]]
name = "efficientnet-lite0"
precisions = ["fp32"]

[energy]
radio_nj_per_byte = 5.0
idle_mw = 3000.0

[[targets]]
kind = "local"
name = "local-fp32"
model = "efficientnet-lite0"
precision = "fp32"

[[targets]]
kind = "edge"
name = "edge"
endpoint = "mqtt://demo"
models = ["efficientnet-lite0"]
timeout_ms = 3000
"#;
