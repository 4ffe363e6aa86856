//! The daemon behind `ferry run`: loads the board and the models, connects to the edge, and
//! answers every request through the executor (decide → run → fall back → one answer), while a
//! sensor loop feeds the decider and probes idle edges.
//!
//! # Layout
//! - [`config`]: the agent's own config file.
//! - [`targets`]: board config + `[decide]` → the decider's targets.
//! - [`edge`]: which link carries each edge target, and the deadline an envelope carries.
//! - [`validate`]: an input decoded and checked against its model before it is decided on.
//! - [`local`]: the local path (tract), one inference at a time.
//! - [`accuracy`]: which local variants and which shaped input forms the manifests allow.
//! - [`shaper`]: an image input made into a shaped form before an offload.
//! - [`system`]: sensor readings → the decider's system state.
//! - [`stats`]: counters and latency percentiles.

pub mod accuracy;
pub mod config;
pub mod edge;
pub mod emulate;
pub mod local;
pub mod stats;
pub mod system;
pub mod shaper;
pub mod targets;
pub mod validate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_drivers::{BoardConfig, SensorSet};
use ferry_decide::targets::TargetKind;
use ferry_decide::{Decider, Observation, TargetId};
use ferry_exec::{ExecError, Executor, Outcome, SubmitOptions};
use ferry_protocol::{DeviceId, Input, ModelName, Precision, Request, Shape, Tensor};
use ferry_transport::mqtt::MqttOffloader;
use ferry_runtime::{Manifest, ModelStore, Threads, TractEngine};

pub use config::AgentConfig;

/// The model name probes ask for; the edge answers it at once and counts it as a probe.
pub use ferry_protocol::PROBE_MODEL;
/// How often the daemon asks the decider whether a probe is due (the plan's shortest interval
/// is `probe_after_ms`, 1 s by default; the sensor sweep may be far slower).
const PROBE_CHECK: Duration = Duration::from_millis(50);
use crate::telemetry::{DecisionWindow, Publisher, Telemetry};
use edge::DeadlineLink;
use local::TractRunner;
use stats::Stats;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The board config has errors (each names its file and key).
    #[error(transparent)]
    Board(#[from] ferry_drivers::ConfigErrors),
    /// The decider refused its config.
    #[error("{path}: the decision config: {message}")]
    Decide {
        /// The board config.
        path: String,
        /// Why.
        message: String,
    },
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] ferry_runtime::RuntimeError),
    /// The MQTT config is unusable.
    #[error("{path}: [mqtt]: {message}")]
    Mqtt {
        /// The agent config.
        path: String,
        /// Why.
        message: String,
    },
    /// Telemetry could not start (spool folder, config).
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// The loader task died.
    #[error("model loading was interrupted: {0}")]
    Join(String),
    /// An edge target no link of this agent can reach as its endpoint says.
    #[error(transparent)]
    Route(#[from] edge::RouteError),
}

/// A request as the local API hands it over.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The model's name.
    pub model: String,
    /// The input.
    pub input: Input,
    /// Relative deadline, ms.
    pub deadline_ms: Option<u32>,
}

/// Why a submission was refused before it was decided on.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The model name is not a valid name or no target serves it.
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    /// The input cannot be run by the model (not an image, the wrong shape): a client error,
    /// answered before any path is tried.
    #[error("{0}")]
    InvalidInput(String),
}

/// The running agent, shared by the API handlers and the background loops.
pub struct Daemon {
    /// Its config.
    pub config: AgentConfig,
    /// Its board config.
    pub board: BoardConfig,
    /// This device.
    pub device: DeviceId,
    /// The executor.
    pub executor: Executor<TractRunner, DeadlineLink<MqttOffloader>>,
    /// The local path.
    pub runner: Arc<TractRunner>,
    /// The edge link, when configured.
    pub offloader: Option<Arc<MqttOffloader>>,
    /// Counters.
    pub stats: Stats,
    /// The latest sensor sweep, rendered for the status page.
    pub sensors: std::sync::Mutex<Vec<String>>,
    /// Telemetry, when there is a broker and it is enabled.
    pub telemetry: Option<Telemetry>,
    publisher: tokio::sync::Mutex<Option<Publisher>>,
    window: Arc<std::sync::Mutex<DecisionWindow>>,
    /// Each model's manifest, to check inputs against before they are decided on.
    manifests: HashMap<String, Arc<Manifest>>,
    /// Each edge target's link, whose one-way estimate follows the decider's.
    edge_links: Vec<(TargetId, Arc<DeadlineLink<MqttOffloader>>)>,
    /// Turns true when the drain on stop is over: the API answers what is still running.
    abort: tokio::sync::watch::Sender<bool>,
    started: Instant,
    /// Probes sent, and the payload bytes they carried (ping + payload; headers not counted).
    probes: ProbeCounters,
}

/// What probing has cost since start.
#[derive(Debug, Default)]
pub struct ProbeCounters {
    /// Probes sent.
    pub sent: AtomicU64,
    /// Payload bytes they carried up (1-byte ping + payload each; envelope, MQTT, TLS and
    /// TCP headers come on top, about [`ferry_decide::probe::MESSAGE_OVERHEAD_BYTES`] a message).
    pub payload_bytes: AtomicU64,
}

/// What [`Daemon::prepare`] read and loaded from a config's files — the board config, the
/// decider and every local model variant — before anything is started. A reload prepares the
/// new config while the running agent still serves, and keeps that one when this fails (a
/// model file truncated by a half-finished copy, a broken board config).
pub struct Prepared {
    config: AgentConfig,
    board: BoardConfig,
    decider: Decider,
    device: DeviceId,
    runner: TractRunner,
    manifests: HashMap<String, Arc<Manifest>>,
    shaper: shaper::ManifestShaper,
}

impl Daemon {
    /// Loads the board config and every local variant, starts the edge link (it connects in
    /// the background), and seeds the local estimates with a few warm-up runs.
    pub async fn start(config: AgentConfig) -> Result<Arc<Daemon>, StartError> {
        Self::start_prepared(Self::prepare(config).await?).await
    }

    /// Reads the board config and loads every local variant `config` needs; starts nothing.
    pub async fn prepare(config: AgentConfig) -> Result<Prepared, StartError> {
        let board = BoardConfig::load(config.resolve(&config.agent.board))?;
        edge::check_routes(&board, config.mqtt.as_ref(), &config.path)?;
        let store = config.agent.models.as_ref().map(|p| ModelStore::new(config.resolve(p))).unwrap_or_else(ModelStore::discover);
        let mut decide_config = targets::decide_config(&board, &config.decide, config.mqtt.is_some());
        accuracy::enforce(&mut decide_config, &store);
        accuracy::offer_forms(&mut decide_config, &store)
            .map_err(|message| StartError::Decide { path: board.path.display().to_string(), message })?;
        let mut decider = Decider::new(&decide_config)
            .map_err(|e| StartError::Decide { path: board.path.display().to_string(), message: e.to_string() })?;
        let device = DeviceId::new(&config.agent.device_id).map_err(|e| StartError::Mqtt {
            path: config.path.display().to_string(),
            message: format!("agent.device_id: {e}"),
        })?;

        let engine = TractEngine::new(Threads(config.agent.threads.into()));
        let targets = decider.targets().clone();
        let (top_k, slowdown) = (usize::from(config.agent.top_k), config.agent.slowdown());
        let (runner, manifests, heads) = tokio::task::spawn_blocking(move || {
            let runner = TractRunner::load(&store, &engine, &targets, top_k, slowdown)?;
            // Models only an edge serves are checked against their manifest when the device
            // has it; without one, an image is still decoded before it is sent.
            let mut manifests = runner.manifests();
            for m in 0..targets.model_count() {
                let name = targets.model_name(ferry_decide::ModelId(m as u8));
                if !manifests.contains_key(name) {
                    if let Ok(manifest) = store.manifest(name) {
                        manifests.insert(name.to_string(), Arc::new(manifest));
                    }
                }
            }
            let heads = shaper::load_heads(&engine, &manifests, &targets, &ferry_runtime::split::cache_dir())?;
            Ok::<_, ferry_runtime::RuntimeError>((runner, manifests, heads))
        })
        .await
        .map_err(|e| StartError::Join(e.to_string()))??;
        let shaper = shaper::ManifestShaper::new(manifests.clone(), heads, slowdown);
        for obs in shaper::measure_heads(&shaper, decider.targets()) {
            decider.observe(obs, 0);
        }
        Ok(Prepared { config, board, decider, device, runner, manifests, shaper })
    }

    /// Starts what [`Daemon::prepare`] loaded: the edge link (it connects in the background),
    /// telemetry, and a few warm-up runs that seed the local estimates.
    pub async fn start_prepared(prepared: Prepared) -> Result<Arc<Daemon>, StartError> {
        let Prepared { config, board, decider, device, runner, manifests, shaper } = prepared;
        let runner = Arc::new(runner);

        let offloader = match &config.mqtt {
            Some(mqtt) => Some(Arc::new(MqttOffloader::start(mqtt, device).map_err(|e| StartError::Mqtt {
                path: config.path.display().to_string(),
                message: e.to_string(),
            })?)),
            None => None,
        };
        // `edge::check_routes` made sure at most one edge target names the `[mqtt]` broker.
        let edge_links: Vec<(TargetId, Arc<DeadlineLink<MqttOffloader>>)> = match &offloader {
            Some(link) => decider
                .targets()
                .iter()
                .filter(|t| !t.is_local())
                .map(|t| (t.id, Arc::new(DeadlineLink::new(link.clone()))))
                .collect(),
            None => Vec::new(),
        };
        let edges = edge_links.iter().map(|(id, l)| (decider.targets().name(*id).to_string(), l.clone())).collect();
        let shaper = Arc::new(shaper);
        let executor = Executor::new(decider, runner.clone(), edges).with_shaper(shaper);
        let (telemetry, publisher) = match &config.mqtt {
            Some(mqtt) if config.telemetry.enabled => {
                let t = Telemetry::open(&config.telemetry, device)?;
                let descriptor = serde_json::to_value(ferry_drivers::describe(&board, &board.board.root)).unwrap_or_default();
                let p = Publisher::start(&t, mqtt, &config.telemetry, descriptor)?;
                (Some(t), Some(p))
            }
            _ => (None, None),
        };
        let window = Arc::new(std::sync::Mutex::new(DecisionWindow::new(10_000)));
        if let Some(t) = &telemetry {
            // The reporter's task ends with the runtime; each daemon has its own window.
            let _ = t.spawn_decision_reporter(window.clone(), config.telemetry.decisions_interval());
        }
        ids::reseed();
        let daemon = Arc::new(Daemon {
            config,
            board,
            device,
            executor,
            runner,
            offloader,
            stats: Stats::default(),
            sensors: std::sync::Mutex::new(Vec::new()),
            telemetry,
            publisher: tokio::sync::Mutex::new(publisher),
            window,
            manifests,
            edge_links,
            abort: tokio::sync::watch::Sender::new(false),
            started: Instant::now(),
            probes: ProbeCounters::default(),
        });
        daemon.warm_up().await;
        Ok(daemon)
    }

    /// Runs each local variant a few times on a neutral input, so the first decisions compare
    /// measured local times rather than priors (and INT8 is not assumed faster than FP32).
    async fn warm_up(&self) {
        let locals: Vec<_> = self.executor.with_decider(|d| {
            d.targets().iter().filter(|t| matches!(t.kind, TargetKind::Local { .. })).map(|t| t.id).collect()
        });
        for target in locals {
            let Some(model) = self.runner.variant(target).cloned() else { continue };
            let runs = self.config.agent.warmup_runs;
            let measured = tokio::task::spawn_blocking(move || {
                let input = vec![0.0f32; model.manifest().input_len()];
                let shape = model.manifest().input.shape.clone();
                (0..runs).filter_map(|_| model.infer_tensor(&shape, &input, 1).ok()).map(|i| i.compute).collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for compute in measured {
                let compute = self.config.agent.slowdown().stretch(compute);
                let compute_us = u32::try_from(compute.as_micros()).unwrap_or(u32::MAX);
                self.executor.observe(Observation::LocalFinished { target, compute_us, ok: true });
            }
            tracing::info!(target = self.executor.with_decider(|d| d.targets().name(target).to_string()), "local variant measured");
        }
    }

    /// Decides, runs and answers one request.
    pub async fn submit(&self, s: Submission) -> Result<Outcome, SubmitError> {
        self.submit_with(s, SubmitOptions::default()).await
    }

    /// [`Daemon::submit`] within the request's constraints, as part of a stream. Dropping the
    /// future (the API's client went away) cancels the request.
    pub async fn submit_with(&self, s: Submission, options: SubmitOptions) -> Result<Outcome, SubmitError> {
        let model = ModelName::new(&s.model).map_err(|_| SubmitError::UnknownModel(s.model.clone()))?;
        if self.executor.with_decider(|d| d.model_id(model.as_str()).is_none()) {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::UnknownModel(s.model));
        }
        // Decoded and checked before it is decided on: a bad input takes no runner, goes to
        // no edge and is charged to neither.
        let manifest = self.manifests.get(model.as_str()).cloned();
        let (input, checked) = tokio::task::spawn_blocking(move || {
            let checked = validate::check(manifest.as_deref(), &s.input);
            (s.input, checked)
        })
        .await
        .map_err(|e| SubmitError::InvalidInput(format!("the input check was interrupted: {e}")))?;
        let prepared = match checked {
            Ok(p) => p,
            Err(e) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(SubmitError::InvalidInput(e.0));
            }
        };
        let deadline_ms = s.deadline_ms.or(match self.config.agent.default_deadline_ms {
            0 => None,
            d => Some(d),
        });
        let request_id = ids::next();
        let request = Request {
            request_id,
            device_id: self.device,
            model,
            precision: Precision::Any,
            deadline_ms,
            sent_at_us: ferry_protocol::wall_clock_us(),
            input,
        };
        let _forget = prepared.map(|tensor| {
            self.runner.prepare(request_id, Arc::new(tensor));
            Forget { runner: &self.runner, id: request_id }
        });
        let outcome = self.executor.submit_with(request, options).await.map_err(|e| match e {
            ExecError::UnknownModel(m) => SubmitError::UnknownModel(m),
        });
        let model_name = s.model;
        match &outcome {
            Ok(o) => {
                let ms = o.answer.latency_us as f32 / 1e3;
                self.stats.record(o.answer.ran, o.answer.ok, o.answer.fallback, ms, deadline_ms);
                self.stats.record_kind(o.answer.kind);
                let path = match (o.answer.ok, o.answer.ran) {
                    (true, ferry_decide::Ran::Local(_)) => "local",
                    (true, ferry_decide::Ran::Edge(_)) => "edge",
                    _ => "failed",
                };
                let missed = deadline_ms.is_some_and(|d| ms > d as f32);
                let r = &o.answer.reason;
                tracing::debug!(
                    request = o.response.request_id,
                    model = %model_name,
                    path,
                    target = %o.ran_on,
                    why = ?r.why,
                    form = %o.form,
                    fallback = ?o.answer.fallback,
                    latency_ms = ms,
                    predicted_local_ms = r.best_local.map_or(f32::NAN, |p| p.mean_ms),
                    predicted_edge_ms = r.best_edge.map_or(f32::NAN, |p| p.mean_ms),
                    "answered"
                );
                self.window.lock().unwrap_or_else(|p| p.into_inner()).record(path, f64::from(ms), missed);
            }
            Err(_) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
        outcome
    }

    /// Ends the drain on stop: requests still in flight are answered `shutting_down` (their
    /// futures are dropped, which cancels them).
    pub fn abort_in_flight(&self) {
        self.abort.send_replace(true);
    }

    /// Resolves once [`Daemon::abort_in_flight`] was called.
    pub async fn aborted(&self) {
        let mut rx = self.abort.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }

    /// Stops telemetry cleanly (retained `offline`, DISCONNECT); the spool keeps what is unsent.
    pub async fn stop(&self) {
        if let Some(p) = self.publisher.lock().await.take() {
            p.shutdown().await;
        }
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// What probing has cost since start.
    pub fn probe_counters(&self) -> &ProbeCounters {
        &self.probes
    }

    /// Sweeps the sensors on their intervals, feeds the decider, and probes idle edges, until
    /// `shutdown` resolves.
    pub async fn sensor_loop(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut sensors = SensorSet::build(&self.board);
        let mut own = system::OwnCpu::default();
        let zone = self.board.thermal.zone.clone();
        // The hardware maximum clock, once: the throttling ratio is the kernel's cap over it.
        let hw_max_hz = ferry_drivers::describe(&self.board, &self.board.board.root)
            .cpu
            .first()
            .map(|c| c.max_hz as f64)
            .filter(|hz| *hz > 0.0);
        let period = Duration::from_millis(self.board.sensors.iter().map(|s| s.interval_ms).min().unwrap_or(1000).clamp(100, 5000));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut probe_tick = tokio::time::interval(PROBE_CHECK);
        probe_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = probe_tick.tick() => {
                    self.refresh_one_way();
                    self.clone().probe_if_due();
                    continue;
                }
                _ = shutdown.changed() => return,
            }
            let statuses = sensors.sweep();
            let state = system::system_state(statuses, own.share(), &zone, hw_max_hz);
            let rendered: Vec<String> = statuses.iter().map(|s| s.to_string()).collect();
            if let Some(t) = self.telemetry.clone() {
                let data = system::sensor_data(statuses);
                // Appending may fsync: keep it off the async threads.
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = t.send_sensors(&data) {
                        tracing::warn!(error = %e, "sensor telemetry not spooled");
                    }
                });
            }
            *self.sensors.lock().unwrap_or_else(|p| p.into_inner()) = rendered;
            self.executor.observe(Observation::System(state));
        }
    }

    /// A probe is a pair of requests for [`PROBE_MODEL`], which the edge answers at once: a
    /// 1-byte one measures the round trip, one of the plan's bytes (`probe_bytes`, grown after
    /// a probe was contradicted) the link. The decider says when one is due and what probing
    /// costs at that cadence ([`ferry_decide::Decider::probe_plan`]).
    fn probe_if_due(self: Arc<Self>) {
        let now = self.executor.now_us();
        let Some((target, plan, up_pace)) = self.executor.with_decider(|d| {
            d.probe_due(now).map(|t| (t, d.probe_plan(t, now), d.estimators().edge(t).link.up_pace().mean()))
        }) else {
            return;
        };
        let Some(link) = self.offloader.clone() else { return };
        let bytes = plan.bytes.max(1);
        let (Some(ping), Some(load)) = (self.probe_request(1), self.probe_request(bytes)) else { return };
        self.probes.sent.fetch_add(1, Ordering::Relaxed);
        self.probes.payload_bytes.fetch_add(1 + u64::from(bytes), Ordering::Relaxed);
        tracing::debug!(bytes, interval_ms = plan.interval_us / 1000, gain = plan.gain, bytes_per_s = plan.bytes_per_s.round(), uplink_share = plan.uplink_share, "probe sent");
        self.executor.observe(Observation::ProbeSent(target));
        // Long enough for the payload at three times the present uplink estimate: a probe on a
        // slow link that times out would count as an edge failure.
        let payload_us = f64::from(bytes) * up_pace.max(0.0) * 3.0;
        let timeout = Duration::from_secs(2) + Duration::from_micros(payload_us.min(60e6) as u64);
        tokio::spawn(async move {
            let timed = |request: Request| {
                let link = link.clone();
                async move {
                    let start = Instant::now();
                    let r = link.offload(request, timeout).await;
                    (r, u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX))
                }
            };
            let obs = match timed(ping).await {
                (Ok(_), rtt_us) => match timed(load).await {
                    (Ok(r), transfer_us) => Observation::ProbeAnswered {
                        target,
                        rtt_us,
                        up_bytes: bytes,
                        down_bytes: 64,
                        transfer_us,
                        edge_queue_us: Some(r.timings.queue_wait_us),
                    },
                    (Err(_), _) => Observation::ProbeFailed(target),
                },
                (Err(_), _) => Observation::ProbeFailed(target),
            };
            if let Observation::ProbeAnswered { rtt_us, transfer_us, .. } = obs {
                tracing::debug!(rtt_ms = rtt_us as f32 / 1e3, transfer_ms = transfer_us as f32 / 1e3, bytes, "probe answered");
            } else {
                tracing::debug!(bytes, "probe failed");
            }
            self.executor.observe(obs);
        });
    }

    /// Keeps each edge link's one-way estimate at half the decider's round-trip estimate.
    fn refresh_one_way(&self) {
        let rtts: Vec<f64> = self.executor.with_decider(|d| self.edge_links.iter().map(|(t, _)| d.estimators().edge(*t).link.rtt().mean()).collect());
        for ((_, link), rtt) in self.edge_links.iter().zip(rtts) {
            link.set_rtt_us(rtt);
        }
    }

    fn probe_request(&self, bytes: u32) -> Option<Request> {
        let tensor = Tensor::new(ferry_protocol::DType::U8, Shape::new(&[bytes]).ok()?, vec![0u8; bytes as usize]).ok()?;
        Some(Request {
            request_id: ids::next(),
            device_id: self.device,
            model: ModelName::new(PROBE_MODEL).ok()?,
            precision: Precision::Any,
            deadline_ms: None,
            sent_at_us: 0,
            input: Input::Tensor(tensor),
        })
    }
}

/// Drops a request's prepared tensor when its answer is in (or its future is dropped).
struct Forget<'a> {
    runner: &'a TractRunner,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.runner.forget(self.id);
    }
}

/// Request ids: one sequence per process, started from the clock (µs since the epoch, as the
/// MQTT link seeds its own) and moved up to the clock again at every daemon start, so that
/// neither a restarted agent nor a reloaded one reuses the ids of answers still on their way
/// to its previous run.
pub mod ids {
    use std::sync::atomic::{AtomicU64, Ordering};

    static NEXT: AtomicU64 = AtomicU64::new(0);

    /// Moves the sequence up to the clock (never down): called at every daemon start.
    pub fn reseed() {
        NEXT.fetch_max(ferry_transport::request_id_seed(), Ordering::Relaxed);
    }

    /// The next id (the clock's seed first, if nothing seeded the sequence yet).
    pub fn next() -> u64 {
        if NEXT.load(Ordering::Relaxed) == 0 {
            reseed();
        }
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
