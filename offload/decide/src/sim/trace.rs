//! Trace descriptions (TOML, seeded) and their expansion into a 100 ms timeline.
//!
//! A trace is three independent sequences of phases: the link (bandwidth, RTT), the device
//! (background CPU load, SoC temperature) and the edge (queue wait, busy share, down). Each
//! phase is drawn by weight, lasts a random time in its range, and draws its levels uniformly
//! from its ranges; bandwidth and RTT wobble around the phase level every 100 ms.
//!
//! Instead of link phases, a `[recorded]` table can replay a recorded link (see
//! [`super::replay`]); the device and edge phases stay as they are beside it.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::board::{BoardProfile, ProfileError};
use super::recorded::{self, RecordedError};
use super::replay::RecordedLink;
use super::rng::Rng;

/// Timeline resolution, µs.
pub const STEP_US: u64 = 100_000;

/// The slowest link rate a timeline holds, Mbit/s: the simulator divides by it.
pub const MIN_MBPS: f64 = 0.05;

/// The SoC temperature of [`TraceSpec::without_background_load`]'s idle device, °C.
const IDLE_C: f64 = 55.0;

/// Largest trace file read, bytes (traces are a few KB of TOML).
const MAX_TOML_BYTES: u64 = 1 << 20;

/// A trace file the simulator cannot replay.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Not TOML of a trace.
    #[error("{0}")]
    Toml(String),
    /// A value out of range or keys that do not go together.
    #[error("{0}")]
    Invalid(&'static str),
    /// A `[recorded]` key out of range.
    #[error("[recorded] `{key}`: {why}")]
    Recorded {
        /// The key.
        key: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A `[recorded]` trace given as text alone: its paths are relative to its file.
    #[error("a [recorded] trace names its recordings relative to its own file: read it with TraceSpec::load or from_toml_in")]
    NoDir,
    /// The trace file or a recording could not be read or parsed.
    #[error(transparent)]
    File(#[from] RecordedError),
    /// The shipped default board profile does not parse (a broken build, not a broken trace).
    #[error("the default board profile: {0}")]
    Board(#[from] ProfileError),
}

/// A trace file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// Short name for tables.
    pub name: String,
    /// What it models.
    #[serde(default)]
    pub description: String,
    /// Seed of everything random in it.
    pub seed: u64,
    /// Length, s (1..=3600).
    pub duration_s: u32,
    /// Requests per second (camera frames), each ±10 % jittered.
    pub fps: f64,
    /// Relative deadline of image requests, ms.
    pub deadline_ms: u32,
    /// Relative deadline of digits requests, ms.
    #[serde(default = "d_digits_deadline")]
    pub digits_deadline_ms: u32,
    /// Share of requests that are `digits` (the rest are efficientnet-lite0 images).
    #[serde(default)]
    pub digits_share: f64,
    /// Log-normal σ of the 100 ms wobble of bandwidth and RTT. Default 0.1.
    #[serde(default = "d_jitter")]
    pub jitter: f64,
    /// Phases follow each other in file order, over and over (a duty cycle), instead of being
    /// drawn at random by weight. Durations and levels are still drawn from their ranges.
    #[serde(default)]
    pub cycle: bool,
    /// Link phases (none when `[recorded]` gives the link).
    #[serde(default)]
    pub link: Vec<LinkPhase>,
    /// A recorded link instead of the phases. Private: only [`TraceSpec::from_toml_in`] and
    /// [`TraceSpec::load`] set it, after reading its recordings.
    #[serde(default)]
    recorded: Option<RecordedLink>,
    /// Device phases.
    pub device: Vec<DevicePhase>,
    /// Edge phases; default: always healthy.
    #[serde(default)]
    pub edge: Vec<EdgePhase>,
    /// The board: its local and edge compute, request and answer bytes, load slowdown and
    /// throttle point. Not a trace-file key: parsing sets the shipped default
    /// (`tests/traces/boards/legacy-constants.toml`), `ferry-sim --board FILE` replaces it for every trace.
    #[serde(skip)]
    pub board: Arc<BoardProfile>,
    /// How many times slower than its profile the simulated board computes locally (1 = as
    /// profiled). Not a trace-file key: `ferry-sim --board-slowdown X` sets it for every trace.
    #[serde(skip, default = "d_board_slowdown")]
    pub board_slowdown: f64,
}

fn d_board_slowdown() -> f64 {
    1.0
}

fn d_digits_deadline() -> u32 {
    20
}
fn d_jitter() -> f64 {
    0.1
}

/// A `[min, max]` range.
pub type Range = [f64; 2];

/// `[[link]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkPhase {
    /// Relative weight of drawing this phase.
    pub weight: f64,
    /// Duration range, s.
    pub secs: Range,
    /// Uplink, Mbit/s.
    pub up_mbps: Range,
    /// Downlink, Mbit/s.
    pub down_mbps: Range,
    /// RTT, ms.
    pub rtt_ms: Range,
}

/// `[[device]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePhase {
    /// Relative weight.
    pub weight: f64,
    /// Duration range, s.
    pub secs: Range,
    /// CPU share of other processes.
    pub cpu_load: Range,
    /// SoC temperature, °C.
    pub temp_c: Range,
}

/// `[[edge]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgePhase {
    /// Relative weight.
    pub weight: f64,
    /// Duration range, s.
    pub secs: Range,
    /// Queue wait, ms.
    pub queue_ms: Range,
    /// Share of requests refused "busy".
    #[serde(default)]
    pub busy: f64,
    /// Down: no answers at all.
    #[serde(default)]
    pub down: bool,
}

/// The world at one 100 ms step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// Uplink, Mbit/s.
    pub up_mbps: f64,
    /// Downlink, Mbit/s.
    pub down_mbps: f64,
    /// RTT, ms.
    pub rtt_ms: f64,
    /// Background CPU share.
    pub cpu_load: f64,
    /// SoC temperature, °C.
    pub temp_c: f64,
    /// Edge queue wait, ms.
    pub edge_queue_ms: f64,
    /// Share refused busy.
    pub edge_busy: f64,
    /// Edge down.
    pub edge_down: bool,
}

/// A trace expanded into samples.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// One per [`STEP_US`].
    pub samples: Vec<Sample>,
}

impl Timeline {
    /// The sample in force at `t_us` (the last one after the end).
    pub fn at(&self, t_us: u64) -> Sample {
        let i = (t_us / STEP_US) as usize;
        self.samples.get(i.min(self.samples.len().saturating_sub(1))).copied().unwrap_or_default()
    }
}

/// Which phase comes next: the `k`-th in order when cycling, else one drawn by weight.
fn next<'a, T>(rng: &mut Rng, phases: &'a [T], cycle: bool, k: &mut usize, weight: impl Fn(&T) -> f64) -> Option<&'a T> {
    if cycle {
        let p = phases.get(*k % phases.len().max(1));
        *k += 1;
        return p;
    }
    pick(rng, phases, weight)
}

fn pick<'a, T>(rng: &mut Rng, phases: &'a [T], weight: impl Fn(&T) -> f64) -> Option<&'a T> {
    let total: f64 = phases.iter().map(&weight).sum();
    let mut x = rng.f64() * total;
    for p in phases {
        x -= weight(p);
        if x <= 0.0 {
            return Some(p);
        }
    }
    phases.last()
}

pub(super) fn uniform(rng: &mut Rng, r: Range) -> f64 {
    r[0] + (r[1] - r[0]) * rng.f64()
}

/// Steps per phase drawn from its duration range.
pub(super) fn steps(rng: &mut Rng, secs: Range) -> usize {
    ((uniform(rng, secs) * 1e6 / STEP_US as f64).round() as usize).max(1)
}

impl TraceSpec {
    /// Parses and checks a trace file's text. A `[recorded]` trace needs its directory: use
    /// [`TraceSpec::from_toml_in`] or [`TraceSpec::load`].
    pub fn from_toml(text: &str) -> Result<TraceSpec, TraceError> {
        TraceSpec::parse(text, None)
    }

    /// Parses and checks a trace file's text, reading the recordings `[recorded]` names
    /// relative to `dir`.
    pub fn from_toml_in(text: &str, dir: &Path) -> Result<TraceSpec, TraceError> {
        TraceSpec::parse(text, Some(dir))
    }

    /// Reads a trace file, and the recordings it names relative to it.
    pub fn load(path: &Path) -> Result<TraceSpec, TraceError> {
        let text = recorded::read_capped(path, MAX_TOML_BYTES)?;
        TraceSpec::parse(&text, Some(path.parent().unwrap_or(Path::new("."))))
    }

    /// The same trace on an idle device: its `[[device]]` phases replaced by one with no
    /// background load at 55 °C (below every shipped board's throttle point). The link and
    /// the edge, drawn from their own seeds, stay exactly as they were; so do the requests.
    /// `ferry-sim --load none`.
    pub fn without_background_load(&mut self) {
        self.device = vec![DevicePhase { weight: 1.0, secs: [3600.0, 3600.0], cpu_load: [0.0, 0.0], temp_c: [IDLE_C, IDLE_C] }];
    }

    /// The `[recorded]` table, if the link is a recording.
    pub fn recorded(&self) -> Option<&RecordedLink> {
        self.recorded.as_ref()
    }

    fn parse(text: &str, dir: Option<&Path>) -> Result<TraceSpec, TraceError> {
        let mut spec: TraceSpec = toml::from_str(text).map_err(|e| TraceError::Toml(e.to_string()))?;
        if spec.duration_s == 0 || spec.duration_s > 3600 {
            return Err(TraceError::Invalid("duration_s must be in 1..=3600"));
        }
        if !(spec.fps > 0.0 && spec.fps <= 100.0) {
            return Err(TraceError::Invalid("fps must be in (0, 100]"));
        }
        if spec.recorded.is_some() && !spec.link.is_empty() {
            return Err(TraceError::Invalid(
                "the link comes from [[link]] phases or from [recorded], not both: remove one",
            ));
        }
        if (spec.link.is_empty() && spec.recorded.is_none()) || spec.device.is_empty() {
            return Err(TraceError::Invalid("at least one [[link]] phase (or a [recorded] link) and one [[device]] phase"));
        }
        if let Some(rec) = spec.recorded.as_mut() {
            rec.load(dir.ok_or(TraceError::NoDir)?)?;
        }
        // Every spec comes through here (the struct has a private field), so none keeps the
        // placeholder board `Deserialize` left.
        spec.board = Arc::new(BoardProfile::shipped_default()?);
        Ok(spec)
    }

    /// Expands the phases (or the recording) into a timeline (deterministic in the seed).
    pub fn timeline(&self) -> Timeline {
        let n = (u64::from(self.duration_s) * 1_000_000 / STEP_US) as usize + 1;
        let mut samples = vec![Sample::default(); n];
        let mut rng = Rng::new(self.seed ^ 0x11_11);
        match &self.recorded {
            Some(rec) => rec.fill(&mut samples, &mut rng, self.jitter),
            None => self.link_phases(&mut samples, &mut rng),
        }
        let mut rng = Rng::new(self.seed ^ 0x22_22);
        let (mut i, mut k) = (0, 0);
        while i < n {
            let Some(p) = next(&mut rng, &self.device, self.cycle, &mut k, |p| p.weight) else { break };
            let (load, temp) = (uniform(&mut rng, p.cpu_load), uniform(&mut rng, p.temp_c));
            for s in samples.iter_mut().skip(i).take(steps(&mut rng, p.secs)) {
                s.cpu_load = load.clamp(0.0, 1.0);
                s.temp_c = temp;
                i += 1;
            }
        }
        let mut rng = Rng::new(self.seed ^ 0x33_33);
        let (mut i, mut k) = (0, 0);
        let healthy = [EdgePhase { weight: 1.0, secs: [60.0, 60.0], queue_ms: [0.0, 1.0], busy: 0.0, down: false }];
        let edge: &[EdgePhase] = if self.edge.is_empty() { &healthy } else { &self.edge };
        while i < n {
            let Some(p) = next(&mut rng, edge, self.cycle, &mut k, |p| p.weight) else { break };
            let q = uniform(&mut rng, p.queue_ms);
            for s in samples.iter_mut().skip(i).take(steps(&mut rng, p.secs)) {
                s.edge_queue_ms = q * rng.lognormal(self.jitter);
                s.edge_busy = p.busy;
                s.edge_down = p.down;
                i += 1;
            }
        }
        Timeline { samples }
    }

    /// The link from the `[[link]]` phases.
    fn link_phases(&self, samples: &mut [Sample], rng: &mut Rng) {
        let (n, mut i, mut k) = (samples.len(), 0, 0);
        while i < n {
            let Some(p) = next(rng, &self.link, self.cycle, &mut k, |p| p.weight) else { break };
            let (up, down, rtt) = (uniform(rng, p.up_mbps), uniform(rng, p.down_mbps), uniform(rng, p.rtt_ms));
            for s in samples.iter_mut().skip(i).take(steps(rng, p.secs)) {
                s.up_mbps = (up * rng.lognormal(self.jitter)).max(MIN_MBPS);
                s.down_mbps = (down * rng.lognormal(self.jitter)).max(MIN_MBPS);
                s.rtt_ms = rtt * rng.lognormal(self.jitter);
                i += 1;
            }
        }
    }
}
