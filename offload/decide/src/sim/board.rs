//! Board profiles: how fast the simulated board and its edge compute, and how many bytes a
//! request and its answer take. `ferry bench local --profile-out FILE` writes one from its
//! measurements ([`BoardProfile::to_toml`] is its writer); `tests/traces/boards/` holds the
//! shipped ones (`legacy-constants.toml`, the default: the constants the simulator had before
//! profiles, which BENCHMARKS.md's tables were made with; `vm-dev.toml`, measured on a busy VM;
//! `rpi4.toml`, from published figures).
//!
//! ```toml
//! board = "vm-dev"
//! source = "measured by `ferry bench local --profile-out …` on …"
//!
//! [cpu]
//! load_k = 0.5          # local compute × (1 + load_k · background load), load 1 = every core busy
//! throttle_c = 85.0     # the SoC throttles above this, °C
//!
//! [models.efficientnet-lite0]   # and [models.digits], the same keys
//! up_bytes = 112835     # one request, encoded (envelope included)
//! down_bytes = 210      # one answer, encoded
//! bytes = "how up_bytes and down_bytes were obtained"
//!
//! [models.efficientnet-lite0.edge]        # the edge's compute for this model
//! mean_ms = 40.0
//! sigma_ms = 2.0
//!
//! [models.efficientnet-lite0.fp32.threads_1]   # local compute; also int8, and threads_2
//! mean_ms = 40.0
//! sigma_ms = 2.0
//!
//! [models.efficientnet-lite0.forms.jpeg85]      # optional: shaped forms of the input
//! up_bytes = 15560      # one request in this form, encoded (envelope included)
//! encode_ms = 6.4       # making it on the board from the original, at no load
//! source = "how these were obtained"
//! ```
//!
//! How the simulator uses it ([`super::world`]): local requests run at the 1-thread figures
//! (the agent's default, `threads = 1` in `firmware-configs/agent.toml`); each request draws
//! one standard normal `z` and takes `mean_ms · exp(z · sigma_ms / mean_ms)` (median the
//! profile's mean, log-σ its coefficient of variation: the simulator's noise model since its
//! first version), the edge likewise with its own draw. The 2-thread figures are recorded for
//! comparison and for choosing the agent's `threads`; the simulator does not read them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::recorded::{self, RecordedError};

/// Largest profile file read, bytes (a profile is about 2 KB of TOML).
const MAX_PROFILE_BYTES: u64 = 64 << 10;

/// The profile the simulator uses when none is given: measured on the development VM.
const SHIPPED_DEFAULT: &str = include_str!("../../../../tests/traces/boards/legacy-constants.toml");

/// Longest compute time accepted, ms (ten minutes: far past any deadline a trace has).
const MAX_MS: f64 = 600_000.0;

/// Largest request or answer accepted, bytes: the protocol's 4 MiB message cap.
const MAX_BYTES: u32 = 4 << 20;

/// A board profile the simulator cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not TOML of a profile (a missing or unknown key is named in the message).
    #[error("board profile: {0}")]
    Toml(String),
    /// A value out of range.
    #[error("board profile: `{key}` {why}")]
    Invalid {
        /// The key, dotted from the top (`models.digits.int8.threads_1.sigma_ms`).
        key: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The profile could not be written as TOML.
    #[error("board profile: cannot write it: {0}")]
    Write(String),
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] RecordedError),
}

/// A board profile file. `Default` is all zeros and empty: a placeholder, not a board
/// ([`super::TraceSpec`] replaces it with the shipped default when it parses a trace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// Short name (`vm-dev`, `rpi4`).
    pub board: String,
    /// Where the figures come from: the command and machine that measured them, or the
    /// publications they were taken from and how they were derived.
    pub source: String,
    /// `[cpu]`.
    pub cpu: CpuProfile,
    /// `[models.*]`.
    pub models: Models,
}

/// `[cpu]`: how the board's local compute reacts to its state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuProfile {
    /// Local compute is `(1 + load_k · load)` times slower under a background load `load`
    /// (the CPU share of other processes, 1 = every core busy).
    pub load_k: f64,
    /// Above this SoC temperature, °C, the clock drops (5 % per °C, to half at most).
    pub throttle_c: f64,
}

/// `[models]`: one table per model the simulator sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Models {
    /// `[models.efficientnet-lite0]`: the image requests.
    #[serde(rename = "efficientnet-lite0")]
    pub efficientnet_lite0: ModelProfile,
    /// `[models.digits]`: the small tensor requests.
    pub digits: ModelProfile,
}

/// One model's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    /// One request on the wire, bytes (the protocol envelope included).
    pub up_bytes: u32,
    /// One answer on the wire, bytes.
    pub down_bytes: u32,
    /// How `up_bytes` and `down_bytes` were obtained (computed, measured, copied).
    pub bytes: String,
    /// The edge's compute for one request.
    pub edge: Timing,
    /// Local FP32.
    pub fp32: Variant,
    /// Local INT8.
    pub int8: Variant,
    /// Shaped forms of the input the device can send instead of the original, by name (the
    /// agent's names: `jpeg85`, `int8-tensor`), at most [`crate::config::MAX_FORMS`]. The
    /// simulator offers them only when asked to shape ([`super::RunOptions::shaping`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forms: BTreeMap<String, FormProfile>,
}

/// One shaped form of a model's input on this board.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormProfile {
    /// One request in this form on the wire, bytes (envelope included).
    pub up_bytes: u32,
    /// Making it from the original input on the board, ms, at no load (it slows down with
    /// load and throttling as local compute does); for a split (`split@N`), running the head.
    pub encode_ms: f64,
    /// The edge's compute for it as a share of the whole model's, in (0, 1]: a split's tail
    /// (measured tail / whole). Default 1 (a shaped input runs the whole model).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub edge_share: f64,
    /// How the figures were obtained.
    pub source: String,
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// One precision at the thread counts profiled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// One thread (what the simulator runs).
    pub threads_1: Timing,
    /// Two threads.
    pub threads_2: Timing,
}

/// A compute time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Mean, ms.
    pub mean_ms: f64,
    /// Standard deviation, ms.
    pub sigma_ms: f64,
}

impl Timing {
    /// The log-σ of the simulator's noise on this time: its coefficient of variation.
    pub fn log_sigma(&self) -> f64 {
        self.sigma_ms / self.mean_ms
    }
}

fn bad(key: impl Into<String>, why: &'static str) -> ProfileError {
    ProfileError::Invalid { key: key.into(), why }
}

impl BoardProfile {
    /// Parses and checks a profile's text.
    pub fn from_toml(text: &str) -> Result<BoardProfile, ProfileError> {
        let profile: BoardProfile = toml::from_str(text).map_err(|e| ProfileError::Toml(e.to_string()))?;
        profile.check()?;
        Ok(profile)
    }

    /// Reads and checks a profile file.
    pub fn load(path: &Path) -> Result<BoardProfile, ProfileError> {
        BoardProfile::from_toml(&recorded::read_capped(path, MAX_PROFILE_BYTES)?)
    }

    /// The profile shipped as the simulator's default, `tests/traces/boards/legacy-constants.toml`.
    pub fn shipped_default() -> Result<BoardProfile, ProfileError> {
        BoardProfile::from_toml(SHIPPED_DEFAULT)
    }

    /// The profile as TOML, checked first (the format `ferry bench local --profile-out` writes).
    pub fn to_toml(&self) -> Result<String, ProfileError> {
        self.check()?;
        let body = toml::to_string(self).map_err(|e| ProfileError::Write(e.to_string()))?;
        Ok(format!("# A board profile for ferry-sim (format: offload/decide/src/sim/board.rs).\n\n{body}"))
    }

    /// The figures of the image model (`true`) or of digits.
    pub fn model(&self, image: bool) -> &ModelProfile {
        if image { &self.models.efficientnet_lite0 } else { &self.models.digits }
    }

    /// Every value in range; the first one out of range is named.
    pub fn check(&self) -> Result<(), ProfileError> {
        if self.board.trim().is_empty() {
            return Err(bad("board", "must not be empty"));
        }
        if self.source.trim().is_empty() {
            return Err(bad("source", "must say where the figures come from"));
        }
        if !(self.cpu.load_k.is_finite() && (0.0..=10.0).contains(&self.cpu.load_k)) {
            return Err(bad("cpu.load_k", "must be in [0, 10]"));
        }
        if !(self.cpu.throttle_c.is_finite() && self.cpu.throttle_c > 0.0 && self.cpu.throttle_c <= 150.0) {
            return Err(bad("cpu.throttle_c", "must be in (0, 150] °C"));
        }
        for (name, m) in [("efficientnet-lite0", &self.models.efficientnet_lite0), ("digits", &self.models.digits)] {
            check_model(&format!("models.{name}"), m)?;
        }
        Ok(())
    }
}

fn check_model(key: &str, m: &ModelProfile) -> Result<(), ProfileError> {
    for (field, v) in [("up_bytes", m.up_bytes), ("down_bytes", m.down_bytes)] {
        if v == 0 || v > MAX_BYTES {
            return Err(bad(format!("{key}.{field}"), "must be in 1..=4194304 (the protocol's message cap)"));
        }
    }
    if m.bytes.trim().is_empty() {
        return Err(bad(format!("{key}.bytes"), "must say how the byte counts were obtained"));
    }
    check_timing(&format!("{key}.edge"), &m.edge)?;
    if m.forms.len() > crate::config::MAX_FORMS {
        return Err(bad(format!("{key}.forms"), "at most 8 forms"));
    }
    for (name, f) in &m.forms {
        if name == "original" {
            return Err(bad(format!("{key}.forms.original"), "is not a shaped form (the original is up_bytes)"));
        }
        if f.up_bytes == 0 || f.up_bytes > MAX_BYTES {
            return Err(bad(format!("{key}.forms.{name}.up_bytes"), "must be in 1..=4194304 (the protocol's message cap)"));
        }
        if !(f.encode_ms.is_finite() && (0.0..=MAX_MS).contains(&f.encode_ms)) {
            return Err(bad(format!("{key}.forms.{name}.encode_ms"), "must be in [0, 600000] ms"));
        }
        if !(f.edge_share > 0.0 && f.edge_share <= 1.0) {
            return Err(bad(format!("{key}.forms.{name}.edge_share"), "must be in (0, 1]"));
        }
        if f.source.trim().is_empty() {
            return Err(bad(format!("{key}.forms.{name}.source"), "must say how the figures were obtained"));
        }
    }
    for (p, v) in [("fp32", &m.fp32), ("int8", &m.int8)] {
        check_timing(&format!("{key}.{p}.threads_1"), &v.threads_1)?;
        check_timing(&format!("{key}.{p}.threads_2"), &v.threads_2)?;
    }
    Ok(())
}

fn check_timing(key: &str, t: &Timing) -> Result<(), ProfileError> {
    if !(t.mean_ms.is_finite() && t.mean_ms > 0.0 && t.mean_ms <= MAX_MS) {
        return Err(bad(format!("{key}.mean_ms"), "must be in (0, 600000] ms"));
    }
    // The simulator's noise is exp(z · σ/mean): past σ = mean a single draw spans orders of
    // magnitude, which no longer models run-to-run variation.
    if !(t.sigma_ms.is_finite() && t.sigma_ms >= 0.0 && t.sigma_ms <= t.mean_ms) {
        return Err(bad(format!("{key}.sigma_ms"), "must be in [0, mean_ms]"));
    }
    Ok(())
}
