//! The decision's configuration. Plain serde structs, each documenting its section, with its
//! defaults here and nowhere else.
//!
//! The board config's `[[targets]]`, `[thermal]` and `[energy]` sections *are* these structs:
//! `ferry-drivers` deserialises a board file's sections into them (and adds its own checks:
//! ranges, names of `[[models]]`, endpoints), and the agent hands them to the decider as they
//! are. The `[decide]` keys ([`DecideConfig`]) live in the agent's config: mode, policy,
//! hedging, quantile, hysteresis, probing,
//! admission (deadline grace, local queue bound, aging, freshest-frame).

use ferry_hal::Precision;
use serde::Deserialize;

use super::error::DecideError;

/// The most targets (local variants + edge endpoints) a decider handles.
pub const MAX_TARGETS: usize = 8;
/// The most distinct models a decider handles.
pub const MAX_MODELS: usize = 8;
/// The most shaped input forms per model ([`FormConfig`]), besides the original.
pub const MAX_FORMS: usize = 8;
/// The largest request on the wire: the protocol's 4 MiB message cap.
const MAX_UP_BYTES: u32 = 4 << 20;

/// Everything the decider needs, in one struct.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[decide]`: how to choose.
    #[serde(default)]
    pub decide: DecideConfig,
    /// `[thermal]`: the governor's set point and gains.
    pub thermal: ThermalConfig,
    /// `[energy]`: figures for `mode = "energy"`. Default: all zero.
    #[serde(default)]
    pub energy: EnergyConfig,
    /// `[[targets]]`: where a request can run; at least one, at most [`MAX_TARGETS`].
    pub targets: Vec<TargetConfig>,
    /// `[[forms]]`: the shaped forms a request's input can be offloaded in instead of the
    /// original, per model, with what each costs before it is measured. The agent fills it
    /// from the models' manifests (only forms within the manifest's accuracy bound); an edge
    /// is sent a form only if its `forms` names it. Default: none (the original only).
    #[serde(default)]
    pub forms: Vec<FormConfig>,
}

/// `[[forms]]`: one shaped form of one model's input (see [`crate::forms`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormConfig {
    /// The model.
    pub model: String,
    /// The form's name (`jpeg85`, `int8-tensor`: the agent's names; not `original`).
    pub name: String,
    /// One request in this form on the wire, bytes (envelope included), until measured.
    pub up_bytes: u32,
    /// Time to make it on the board from the original input, ms, until measured (for a
    /// split, running the head).
    pub encode_ms: f64,
    /// The edge's compute for a request in this form, as a share of its compute for the whole
    /// model (in (0, 1]): a split's tail, measured tail / whole; 1 (the default) for a shaped
    /// input, which the whole model runs on. The edge's compute estimate stays one per model:
    /// the prediction takes this share of it, and an answer in this form teaches it the
    /// reported compute divided by the share.
    #[serde(default = "one")]
    pub edge_share: f64,
}

fn one() -> f64 {
    1.0
}

/// What "cost" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Least predicted latency (the default).
    #[default]
    Latency,
    /// Least predicted energy on the board, among paths that meet the deadline.
    Energy,
}

/// Which policy decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Cost model over live estimates, hysteresis, thermal governor (the default).
    #[default]
    Adaptive,
    /// Always the first local target (by priority).
    AlwaysLocal,
    /// Always the first edge target (by priority); local only as fallback.
    AlwaysOffload,
    /// The seed rule: offload when demand > 80 % of local capacity or bandwidth > 5 Mbps.
    Threshold,
}

fn d_quantile_k() -> f64 {
    2.0
}
fn d_tight_fraction() -> f64 {
    1.0
}
fn d_margin() -> f64 {
    0.10
}
fn d_margin_ms() -> f64 {
    1.0
}
fn d_probe_after_ms() -> u32 {
    1_000
}
fn d_probe_bytes() -> u32 {
    16 * 1024
}
fn d_probe_idle_ms() -> u32 {
    600_000
}
fn d_probe_max_share() -> f64 {
    0.4
}
fn d_alpha() -> f64 {
    0.2
}
fn d_breaker_errors() -> u32 {
    3
}
fn d_deadline_grace_ms() -> u32 {
    20
}
fn d_local_queue_max() -> u16 {
    8
}
fn d_aging_factor() -> f64 {
    4.0
}
fn d_threshold_demand() -> f64 {
    0.8
}
fn d_threshold_mbps() -> f64 {
    5.0
}

/// `[decide]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideConfig {
    /// `latency` (default) or `energy`.
    #[serde(default)]
    pub mode: Mode,
    /// `adaptive` (default), `always-local`, `always-offload` or `threshold`.
    #[serde(default)]
    pub policy: PolicyKind,
    /// Run both paths for requests whose deadline is at risk and keep the first answer.
    /// Default false.
    #[serde(default)]
    pub hedge: bool,
    /// k in the planning quantile mean + k·σ (0..=5). Default 2.
    #[serde(default = "d_quantile_k")]
    pub quantile_k: f64,
    /// A deadline is "tight" when the best mean prediction exceeds this share of it; then the
    /// paths that meet it at their planning quantile are ranked by that quantile, not their
    /// mean (0..=1). Default 1.0, which is off: every path that meets the deadline at its
    /// quantile is then ranked by its mean. At 0.6 (the default until issue 13) it gained no
    /// deadline on any shipped or recorded trace (at most 0.1 point either way) and cost the
    /// idle Pi-class board up to 7.5 points of mean latency against the oracle (edge-overload
    /// +13.2 % against +5.7 %; BENCHMARKS.md, "Overload and the hindsight reference").
    #[serde(default = "d_tight_fraction")]
    pub tight_fraction: f64,
    /// Hysteresis: leave the current path only for one cheaper by this share (0..1). Default 0.1.
    #[serde(default = "d_margin")]
    pub hysteresis_margin: f64,
    /// Hysteresis: ... and by at least this much, ms. Default 1.
    #[serde(default = "d_margin_ms")]
    pub hysteresis_ms: f64,
    /// The shortest time between probes of an unused edge, ms (50..=3_600_000): how often it
    /// is probed when a recovery would gain much (see [`crate::probe`]). Default 1000.
    #[serde(default = "d_probe_after_ms")]
    pub probe_after_ms: u32,
    /// Bytes a bandwidth probe uploads (1..=1 MiB), doubled (up to 8×) each time a real
    /// transfer contradicts a probe (a probe within a link's burst allowance crosses a
    /// throttled link at line rate). Default 16 KiB.
    #[serde(default = "d_probe_bytes")]
    pub probe_bytes: u32,
    /// The longest time between probes, ms (at least `probe_after_ms`): the cadence with no
    /// requests (nothing to gain), which bounds idle probe traffic. Default 600 000 (10 min).
    #[serde(default = "d_probe_idle_ms")]
    pub probe_idle_ms: u32,
    /// The largest share of the uplink's time probes may take, as its present estimate says
    /// (0 < s <= 1): on a slow link, probes are spaced out to stay within it. Default 0.4
    /// (a 16 KiB probe every ~0.85 s at 400 kbit/s; the uplink is otherwise idle then, since
    /// requests run local — the cost is bytes, reported in `/v1/status`).
    #[serde(default = "d_probe_max_share")]
    pub probe_max_share: f64,
    /// EWMA weight of a new sample (0 < a <= 1). Default 0.2.
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    /// Consecutive errors that mark an edge down until a probe succeeds. Default 3.
    #[serde(default = "d_breaker_errors")]
    pub breaker_errors: u32,
    /// No answer comes later than its deadline plus this, ms (0..=10_000): a request still
    /// running then is answered `deadline_exceeded` and its paths are stopped, and one that no
    /// path can answer by then by its prediction is answered so at once (unless it asked for
    /// best effort). Default 20.
    #[serde(default = "d_deadline_grace_ms")]
    pub deadline_grace_ms: u32,
    /// Runs that may wait for the local runner behind the running one (0..=1024): the next
    /// one is not offered local (it goes to an edge, or is answered `busy` at once).
    /// Default 8.
    #[serde(default = "d_local_queue_max")]
    pub local_queue_max: u16,
    /// Aging of the local queue's shortest-first order (0..=1000): a waiting run's key is its
    /// enqueue time plus this times its predicted compute, least first, so a later run passes
    /// it only if it is shorter by the time already waited over this factor. 0: first come,
    /// first served. Default 4.
    #[serde(default = "d_aging_factor")]
    pub aging_factor: f64,
    /// Freshest-frame: a request of a stream (`stream=` in the API) supersedes the stream's
    /// older request while that one still waits for the local runner and was not sent to an
    /// edge; the older is answered `superseded`. Per request, `freshest=` overrides it.
    /// Default false.
    #[serde(default)]
    pub freshest: bool,
    /// `threshold` policy: local demand share above which it offloads. Default 0.8.
    #[serde(default = "d_threshold_demand")]
    pub threshold_demand: f64,
    /// `threshold` policy: uplink bandwidth above which it offloads, Mbit/s. Default 5.
    #[serde(default = "d_threshold_mbps")]
    pub threshold_mbps: f64,
}

impl Default for DecideConfig {
    fn default() -> Self {
        DecideConfig {
            mode: Mode::default(),
            policy: PolicyKind::default(),
            hedge: false,
            quantile_k: d_quantile_k(),
            tight_fraction: d_tight_fraction(),
            hysteresis_margin: d_margin(),
            hysteresis_ms: d_margin_ms(),
            probe_after_ms: d_probe_after_ms(),
            probe_bytes: d_probe_bytes(),
            probe_idle_ms: d_probe_idle_ms(),
            probe_max_share: d_probe_max_share(),
            alpha: d_alpha(),
            breaker_errors: d_breaker_errors(),
            deadline_grace_ms: d_deadline_grace_ms(),
            local_queue_max: d_local_queue_max(),
            aging_factor: d_aging_factor(),
            freshest: false,
            threshold_demand: d_threshold_demand(),
            threshold_mbps: d_threshold_mbps(),
        }
    }
}

fn d_kp() -> f64 {
    0.1
}
fn d_ki() -> f64 {
    0.01
}
fn d_penalty() -> f64 {
    3.0
}

/// `[thermal]`: the thermal zone to follow and the PI governor that keeps it below throttling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalConfig {
    /// The thermal zone (its sysfs `type`, e.g. `cpu-thermal`) whose temperature the governor
    /// follows. A board config must name one; the simulator has none. Default: empty.
    #[serde(default)]
    pub zone: String,
    /// Where the SoC starts to throttle, °C.
    pub throttle_point_c: f64,
    /// Where the governor starts shifting work to the edge, °C (below the throttle point).
    pub set_point_c: f64,
    /// Proportional gain, per °C above the set point. Default 0.1.
    #[serde(default = "d_kp")]
    pub kp: f64,
    /// Integral gain, per °C·s above the set point. Default 0.01.
    #[serde(default = "d_ki")]
    pub ki: f64,
    /// At full output, local paths cost (1 + this) times their prediction. Default 3.
    #[serde(default = "d_penalty")]
    pub max_local_penalty: f64,
}

/// `[energy]`: the figures the energy mode compares. Every key defaults to 0 (not modelled).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyConfig {
    /// Radio energy per byte sent or received, nJ.
    #[serde(default)]
    pub radio_nj_per_byte: f64,
    /// Radio wake-up and tail energy per offload, mJ.
    #[serde(default)]
    pub radio_tail_mj: f64,
    /// Board idle power, mW (charged while waiting for an answer).
    #[serde(default)]
    pub idle_mw: f64,
    /// Energy of one local inference per model and precision.
    #[serde(default)]
    pub inference: Vec<InferenceEnergy>,
}

/// `[[energy.inference]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceEnergy {
    /// Model name.
    pub model: String,
    /// Precision.
    pub precision: Precision,
    /// mJ per inference.
    pub mj_per_inference: f64,
}

fn d_memory_ratio() -> f64 {
    0.9
}
/// An edge target's `timeout_ms` when the config does not say.
pub const DEFAULT_EDGE_TIMEOUT_MS: u32 = 2_000;

fn d_timeout_ms() -> u32 {
    DEFAULT_EDGE_TIMEOUT_MS
}
fn d_inflight() -> u16 {
    8
}

/// `[[targets]]`, tagged by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetConfig {
    /// A local model variant.
    Local(LocalTarget),
    /// An edge endpoint.
    Edge(EdgeTarget),
}

impl TargetConfig {
    /// The target's name.
    pub fn name(&self) -> &str {
        match self {
            TargetConfig::Local(t) => &t.name,
            TargetConfig::Edge(t) => &t.name,
        }
    }
    /// Its priority (lower first on ties).
    pub fn priority(&self) -> u8 {
        match self {
            TargetConfig::Local(t) => t.priority,
            TargetConfig::Edge(t) => t.priority,
        }
    }
}

/// A local variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalTarget {
    /// Unique name, e.g. `local-int8`.
    pub name: String,
    /// Model name.
    pub model: String,
    /// Precision.
    pub precision: Precision,
    /// Lower wins ties (0..=100). Default 0.
    #[serde(default)]
    pub priority: u8,
    /// Do not run here above this memory share (0 < r <= 1). Default 0.9.
    #[serde(default = "d_memory_ratio")]
    pub max_memory_ratio: f64,
    /// Compute time to assume before the first measurement, ms. Default: from the device
    /// descriptor's throughput if the agent fills it in, else 50.
    #[serde(default)]
    pub prior_ms: Option<f64>,
}

impl LocalTarget {
    /// A local target with every optional key at its default.
    pub fn new(name: String, model: String, precision: Precision, priority: u8) -> Self {
        LocalTarget { name, model, precision, priority, max_memory_ratio: d_memory_ratio(), prior_ms: None }
    }
}

/// An edge endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeTarget {
    /// Unique name.
    pub name: String,
    /// `mqtts://host:port` (`mqtt://` for tests): the broker the edge is reached through. The
    /// decision does not read it; the agent routes by it: it must be the agent's `[mqtt]
    /// broker` (one edge target per broker), else `ferry run` refuses to start. CoAP
    /// (`coaps://`) is refused until it is implemented. A board config must give one. Default:
    /// empty.
    #[serde(default)]
    pub endpoint: String,
    /// Models it serves; empty: all.
    #[serde(default)]
    pub models: Vec<String>,
    /// The shaped input forms it may be sent besides the original (`jpeg85`, `int8-tensor`;
    /// the edge must speak protocol version 2). Per request the decision sends the form with
    /// the least predicted latency among these, for models whose manifest measured the form
    /// within its accuracy bound. Default: none (the original only).
    #[serde(default)]
    pub forms: Vec<String>,
    /// Lower wins ties (0..=100). Default 0.
    #[serde(default)]
    pub priority: u8,
    /// Give up on an answer after this long, ms. Default 2000.
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u32,
    /// Requests in flight at once. Default 8.
    #[serde(default = "d_inflight")]
    pub max_inflight: u16,
    /// Edge compute time to assume before the first response, ms. Default 20.
    #[serde(default)]
    pub compute_prior_ms: Option<f64>,
}

impl Config {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, DecideError> {
        let config: Config = toml::from_str(text).map_err(|e| DecideError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and counts.
    pub fn validate(&self) -> Result<(), DecideError> {
        let bad = |key: &'static str, why: &'static str| Err(DecideError::Invalid { key, why });
        if self.targets.is_empty() {
            return bad("targets", "at least one target is needed");
        }
        if self.targets.len() > MAX_TARGETS {
            return bad("targets", "at most 8 targets");
        }
        for (i, t) in self.targets.iter().enumerate() {
            if self.targets[..i].iter().any(|u| u.name() == t.name()) {
                return bad("targets", "target names must be unique");
            }
        }
        let d = &self.decide;
        if !(0.0..=5.0).contains(&d.quantile_k) {
            return bad("decide.quantile_k", "must be in 0..=5");
        }
        if !(0.0..=1.0).contains(&d.tight_fraction) {
            return bad("decide.tight_fraction", "must be in 0..=1");
        }
        if !(0.0..1.0).contains(&d.hysteresis_margin) {
            return bad("decide.hysteresis_margin", "must be in 0..1");
        }
        if !(d.alpha > 0.0 && d.alpha <= 1.0) {
            return bad("decide.alpha", "must be in (0, 1]");
        }
        if d.probe_after_ms < 50 {
            return bad("decide.probe_after_ms", "must be at least 50");
        }
        if d.deadline_grace_ms > 10_000 {
            return bad("decide.deadline_grace_ms", "must be in 0..=10000");
        }
        if d.local_queue_max > 1024 {
            return bad("decide.local_queue_max", "must be in 0..=1024");
        }
        if !(0.0..=1000.0).contains(&d.aging_factor) {
            return bad("decide.aging_factor", "must be in 0..=1000");
        }
        if d.probe_bytes == 0 || d.probe_bytes > 1 << 20 {
            return bad("decide.probe_bytes", "must be in 1..=1048576");
        }
        if d.probe_idle_ms < d.probe_after_ms {
            return bad("decide.probe_idle_ms", "must be at least probe_after_ms");
        }
        if !(d.probe_max_share > 0.0 && d.probe_max_share <= 1.0) {
            return bad("decide.probe_max_share", "must be in (0, 1]");
        }
        for (i, f) in self.forms.iter().enumerate() {
            if self.forms[..i].iter().any(|g| g.model == f.model && g.name == f.name) {
                return bad("forms", "each model's form at most once");
            }
            if self.forms.iter().filter(|g| g.model == f.model).count() > MAX_FORMS {
                return bad("forms", "at most 8 forms per model");
            }
            if f.name.is_empty() || f.name == "original" {
                return bad("forms.name", "a shaped form's name (the original is always there)");
            }
            if f.up_bytes == 0 || f.up_bytes > MAX_UP_BYTES {
                return bad("forms.up_bytes", "must be in 1..=4194304");
            }
            if !(f.encode_ms.is_finite() && (0.0..=600_000.0).contains(&f.encode_ms)) {
                return bad("forms.encode_ms", "must be in 0..=600000");
            }
            if !(f.edge_share > 0.0 && f.edge_share <= 1.0) {
                return bad("forms.edge_share", "must be in (0, 1]");
            }
        }
        for t in &self.targets {
            if let TargetConfig::Edge(e) = t {
                if e.forms.iter().any(|n| n == "original") {
                    return bad("targets.forms", "shaped forms only (the original is always allowed)");
                }
            }
        }
        if self.thermal.set_point_c >= self.thermal.throttle_point_c {
            return bad("thermal.set_point_c", "must be below the throttle point");
        }
        Ok(())
    }
}
