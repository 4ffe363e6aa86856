//! `ferry demo`: Ferry's main job on an embedded default, on one machine with nothing
//! installed. An in-process MQTT broker (rumqttd) and edge server (ferry-edge) on loopback, the
//! agent reaching them through an emulated link, and a workload of EfficientNet-Lite0 requests
//! while the link and the CPU load change; then a summary table.
//!
//! Fairness: the policies take turns round by round. In every round each policy, with a fresh
//! agent, goes through the same phases with the same requests at the same spacing; the order
//! the policies take turns in rotates between rounds, so that a drift in the machine's load
//! does not favour one of them. Next to the policies the summary prints two hindsight
//! references computed from the same measurements ([`record`]).
//!
//! The device is emulated as a slower board (local runs take `slowdown` × their real time,
//! as a Raspberry Pi 4 takes several times longer than this machine's core); the edge runs at
//! this machine's speed. The link is a pacing proxy ([`link`]); the CPU load is real (a
//! spinning thread), and the agent sees it through its CPU probe.
//!
//! # Layout
//! - [`scenario`]: the phases, the policies and the order they take turns in.
//! - [`record`]: per-request records, per-policy figures and the references (no I/O).
//! - [`report`]: what is printed.
//! - [`broker`]: rumqttd in-process.
//! - [`link`]: the emulated link.
//! - [`load`]: the background CPU load.

pub mod broker;
pub mod link;
pub mod load;
pub mod record;
pub mod report;
pub mod scenario;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_decide::Ran;
use ferry_protocol::{ImageFormat, Input};
use serde::Serialize;
use tokio::sync::watch;

use crate::daemon::{AgentConfig, Daemon, Submission, SubmitError};
use crate::service::Agent;
use record::{Comparison, Path as AnswerPath, RequestRecord, SlotBest};
use scenario::{order, PHASES, POLICIES};

/// Demo settings.
#[derive(Debug, Clone, Serialize)]
pub struct DemoOptions {
    /// Requests per phase.
    pub per_phase: u32,
    /// Rounds: each policy goes through every phase once per round.
    pub rounds: u32,
    /// Spacing between request starts, ms (0: back to back). A request that answers later
    /// than this is followed at once by the next.
    pub interval_ms: u32,
    /// Local slowdown emulating a slower board.
    pub slowdown: f64,
    /// Deadline per request, ms.
    pub deadline_ms: u32,
    /// The model folder.
    pub models: PathBuf,
}

/// Everything the demo measured and concluded.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// The settings it ran with.
    pub options: DemoOptions,
    /// The scenario's phases, by index.
    pub phases: Vec<scenario::Phase>,
    /// The order the policies took turns in, per round.
    pub orders: Vec<Vec<&'static str>>,
    /// Every request, in the order they were sent.
    pub records: Vec<RequestRecord>,
    /// The per-slot best, slot by slot.
    pub per_slot_best: Vec<SlotBest>,
    /// The summary's figures.
    pub comparison: Comparison,
    /// This machine's cores.
    pub cores: usize,
    /// `/proc/loadavg`'s three averages before and after.
    pub load_before: Option<String>,
    /// See `load_before`.
    pub load_after: Option<String>,
    /// Wall time, s.
    pub took_s: f64,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The in-process broker did not start.
    #[error("broker: {0}")]
    Broker(String),
    /// The emulated link (the pacing proxy) did not start.
    #[error("emulated link: {0}")]
    Link(#[source] std::io::Error),
    /// A temporary folder for the agents' sockets and spools.
    #[error("temporary folder: {0}")]
    TempDir(#[source] std::io::Error),
    /// A bundled file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The demo's own edge or agent config was refused (a defect of the demo).
    #[error("{what} config: {message}")]
    Config {
        /// "edge" or the policy.
        what: String,
        /// The parser's message.
        message: String,
    },
    /// An agent did not start or did not reach the broker.
    #[error("agent ({policy}): {message}")]
    Agent {
        /// Its policy.
        policy: &'static str,
        /// Why.
        message: String,
    },
    /// A request was refused before it was decided on.
    #[error("agent ({policy}) refused a request: {source}")]
    Submit {
        /// Its policy.
        policy: &'static str,
        /// Why.
        source: SubmitError,
    },
}

/// The shared world every agent runs in: the link's shape and the background job.
struct World {
    shape: Arc<link::Shape>,
    hog: load::CpuLoad,
}

impl World {
    fn enter(&self, phase: &scenario::Phase) {
        self.shape.set(phase.mbps, phase.delay_ms);
        self.hog.set(phase.cpu_load);
    }
}

/// Runs the whole demo, printing as it goes; returns what it measured.
pub async fn run(opts: &DemoOptions) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    let load_before = load_average();
    let dir = tempfile::tempdir().map_err(DemoError::TempDir)?;
    let broker = broker::start(broker::free_port().map_err(DemoError::Broker)?)
        .map_err(DemoError::Broker)?;
    let world = World {
        shape: Arc::new(link::Shape::default()),
        hog: load::CpuLoad::start(),
    };
    world.enter(&PHASES[0]);
    let link_addr = link::start(broker, world.shape.clone())
        .await
        .map_err(DemoError::Link)?;
    println!(
        "ferry demo: broker (rumqttd) on {broker}, emulated link on {link_addr}, device = this machine slowed {}x; {} rounds, {} requests per phase",
        opts.slowdown, opts.rounds, opts.per_phase
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let edge = edge_config(broker, &opts.models)?;
    let mut edge_stop = stop_rx.clone();
    let edge_task = tokio::spawn(ferry_edge::run(edge, async move {
        let _ = edge_stop.wait_for(|s| *s).await;
    }));
    let images = [
        read(&opts.models.join("images/cat.jpg"))?,
        read(&opts.models.join("images/espresso.jpg"))?,
    ];

    let mut records = Vec::new();
    let mut first = true;
    let result: Result<(), DemoError> = async {
        for round in 0..opts.rounds {
            for (place, policy) in order(round).into_iter().enumerate() {
                let run = PolicyRun {
                    round,
                    place: place as u32,
                    policy,
                    opts,
                    images: &images,
                    world: &world,
                };
                run.go(dir.path(), link_addr, first, &mut records).await?;
                first = false;
            }
        }
        Ok(())
    }
    .await;
    world.hog.set(false);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), edge_task).await;
    result?;

    let comparison = Comparison::of(&records, &POLICIES, opts.rounds);
    let report = DemoReport {
        options: opts.clone(),
        phases: PHASES.to_vec(),
        orders: (0..opts.rounds).map(|r| order(r).to_vec()).collect(),
        per_slot_best: record::per_slot_best(&records),
        records,
        comparison,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        load_before,
        load_after: load_average(),
        took_s: started.elapsed().as_secs_f64(),
    };
    print!("{}", report::summary(&report));
    Ok(report)
}

/// One policy's turn in one round: a fresh agent through every phase.
struct PolicyRun<'a> {
    round: u32,
    place: u32,
    policy: &'static str,
    opts: &'a DemoOptions,
    images: &'a [Vec<u8>; 2],
    world: &'a World,
}

impl PolicyRun<'_> {
    async fn go(
        &self,
        dir: &Path,
        link: std::net::SocketAddr,
        first: bool,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(), DemoError> {
        let policy = self.policy;
        // Every agent starts in the first phase's world, so that its warm-up and its first
        // probes see the same link and load.
        self.world.enter(&PHASES[0]);
        let config = agent_config(dir, policy, self.round, link, self.opts)?;
        // The agent as `ferry run` composes it (API, sensor loop); stopped before the next
        // starts, so that only one agent at a time holds a connection or probes the link.
        let agent = Agent::start(config).await.map_err(|e| DemoError::Agent {
            policy,
            message: e.to_string(),
        })?;
        let daemon = agent.daemon().clone();
        let outcome = self.phases(&daemon, first, records).await;
        drop(daemon);
        agent.stop().await;
        outcome
    }

    async fn phases(
        &self,
        daemon: &Daemon,
        first: bool,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(), DemoError> {
        let policy = self.policy;
        if let Some(link) = &daemon.offloader {
            link.wait_ready(Duration::from_secs(10))
                .await
                .map_err(|e| DemoError::Agent {
                    policy,
                    message: format!("device → broker: {e}"),
                })?;
        }
        // Let the edge subscribe before the first agent sends anything.
        tokio::time::sleep(Duration::from_millis(if first { 1500 } else { 200 })).await;
        let interval = Duration::from_millis(u64::from(self.opts.interval_ms));
        for (index, phase) in PHASES.iter().enumerate() {
            self.world.enter(phase);
            let phase_start = tokio::time::Instant::now();
            let before = records.len();
            for slot in 0..self.opts.per_phase {
                tokio::time::sleep_until(phase_start + interval * slot).await;
                let image = &self.images[slot as usize % self.images.len()];
                let input = Input::Image {
                    format: ImageFormat::Jpeg,
                    bytes: image.clone(),
                };
                let s = Submission {
                    model: "efficientnet-lite0".to_string(),
                    input,
                    deadline_ms: Some(self.opts.deadline_ms),
                };
                let sent = Instant::now();
                let sent_ms = phase_start.elapsed().as_secs_f64() * 1e3;
                let outcome = daemon
                    .submit(s)
                    .await
                    .map_err(|source| DemoError::Submit { policy, source })?;
                let latency_ms = sent.elapsed().as_secs_f64() * 1e3;
                let a = outcome.answer;
                let path = match (a.ok, a.ran) {
                    (false, _) | (_, Ran::Nowhere) => AnswerPath::Failed,
                    (true, Ran::Local(_)) => AnswerPath::Local,
                    (true, Ran::Edge(_)) => AnswerPath::Edge,
                };
                records.push(RequestRecord {
                    round: self.round,
                    place: self.place,
                    policy,
                    phase: index,
                    slot,
                    sent_ms,
                    latency_ms,
                    path,
                    fallback: a.fallback.is_some(),
                    missed: latency_ms > f64::from(self.opts.deadline_ms),
                    request_id: outcome.response.request_id,
                });
            }
            // Every policy spends the same time in a phase unless its answers overran.
            tokio::time::sleep_until(phase_start + interval * self.opts.per_phase).await;
            println!(
                "{}",
                report::phase_line(
                    self.round,
                    self.opts.rounds,
                    policy,
                    phase,
                    &records[before..],
                    self.opts.per_phase
                )
            );
        }
        Ok(())
    }
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn read(path: &Path) -> Result<Vec<u8>, DemoError> {
    std::fs::read(path).map_err(|source| DemoError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn edge_config(
    broker: std::net::SocketAddr,
    models: &Path,
) -> Result<ferry_edge::EdgeConfig, DemoError> {
    let text = format!(
        "share_group = \"demo\"\nmodels_dir = \"{}\"\nworkers = 1\nqueue_capacity = 16\nmax_batch = 4\n[models.efficientnet-lite0]\nprecisions = [\"fp32\"]\n[mqtt]\nbroker = \"mqtt://{broker}\"\ninsecure = true\n",
        models.display()
    );
    ferry_edge::EdgeConfig::parse(&text, Path::new("<demo edge config>")).map_err(|e| {
        DemoError::Config {
            what: "edge".to_string(),
            message: e.to_string(),
        }
    })
}

fn agent_config(
    dir: &Path,
    policy: &str,
    round: u32,
    link: std::net::SocketAddr,
    opts: &DemoOptions,
) -> Result<AgentConfig, DemoError> {
    let board = dir.join("demo-board.toml");
    let refused = |message: String| DemoError::Config {
        what: policy.to_string(),
        message,
    };
    // The edge target's endpoint is the broker the agent reaches it through.
    let board_text = DEMO_BOARD.replace("mqtt://demo", &format!("mqtt://{link}"));
    std::fs::write(&board, board_text).map_err(|e| refused(format!("{}: {e}", board.display())))?;
    let text = format!(
        "[agent]\ndevice_id = \"demo-{policy}\"\nboard = \"{}\"\nmodels = \"{}\"\nemulate_slowdown = {:.3}\nwarmup_runs = 2\n[api]\nunix = \"{}\"\n[decide]\npolicy = \"{policy}\"\n[mqtt]\nbroker = \"mqtt://{link}\"\ninsecure = true\n[telemetry]\nspool_dir = \"{}\"\n",
        board.display(),
        opts.models.display(),
        opts.slowdown,
        dir.join(format!("{policy}.sock")).display(),
        // A spool of its own: an agent stopped mid-write leaves a torn tail the next would repair.
        dir.join(format!("spool-{policy}-{round}")).display()
    );
    AgentConfig::parse(&text, &dir.join("agent.toml")).map_err(|e| refused(e.to_string()))
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
