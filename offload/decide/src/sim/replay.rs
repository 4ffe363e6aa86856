//! `[recorded]`: a trace whose link is replayed from a recording instead of drawn from
//! `[[link]]` phases.
//!
//! A recording carries capacity only, so the table supplies the rest: the RTT (a fixed value or
//! a range drawn per spell, wobbling every 100 ms by the trace's `jitter` like a phase's) and,
//! optionally, a downlink of its own. The recorded capacity itself is replayed as measured, with
//! no wobble. There is no loss key: the simulator has no packet loss to apply it to.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::recorded::{self, Format, Recording};
use super::rng::Rng;
use super::trace::{steps, uniform, Range, Sample, TraceError, MIN_MBPS, STEP_US};

/// A number or a `[min, max]` range.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Level {
    /// Always this.
    Fixed(f64),
    /// Drawn uniformly.
    Range(Range),
}

impl Level {
    fn range(self) -> Range {
        match self {
            Level::Fixed(x) => [x, x],
            Level::Range(r) => r,
        }
    }
}

/// `[recorded]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedLink {
    /// The uplink's recording, relative to the trace file.
    pub up: PathBuf,
    /// The downlink's recording; default: the uplink's series (or `down_mbps`).
    #[serde(default)]
    pub down: Option<PathBuf>,
    /// A fixed downlink, Mbit/s, instead of a recording.
    #[serde(default)]
    pub down_mbps: Option<f64>,
    /// `"cooked"` or `"mahimahi"` for both files; default: each file's extension
    /// (`.log`/`.txt` cooked, `.up`/`.down` Mahimahi).
    #[serde(default)]
    pub format: Option<Format>,
    /// Multiplies the recorded capacities (not `down_mbps`). Default 1.
    #[serde(default = "d_scale")]
    pub scale: f64,
    /// RTT, ms: a number, or a `[min, max]` range drawn anew for every spell of `rtt_secs`.
    pub rtt_ms: Level,
    /// How long each RTT level holds, s (drawn per spell); default: the whole trace.
    #[serde(default)]
    pub rtt_secs: Option<Range>,
    /// The recordings, read when the trace file is.
    #[serde(skip)]
    loaded: Option<(Recording, Option<Recording>)>,
}

fn d_scale() -> f64 {
    1.0
}

/// `[lo, hi]` finite with `lo ≤ hi` and both inside `[min, max]`.
fn in_range(r: Range, min: f64, max: f64) -> bool {
    r.iter().all(|x| x.is_finite() && (min..=max).contains(x)) && r[0] <= r[1]
}

impl RecordedLink {
    /// Checks the keys and reads the recordings, paths taken relative to `dir`.
    pub(super) fn load(&mut self, dir: &Path) -> Result<(), TraceError> {
        let bad = |key, why| TraceError::Recorded { key, why };
        if !(self.scale.is_finite() && self.scale > 0.0 && self.scale <= 1000.0) {
            return Err(bad("scale", "must be in (0, 1000]"));
        }
        if !in_range(self.rtt_ms.range(), 0.0, 10_000.0) {
            return Err(bad("rtt_ms", "a number or [min, max] with 0 <= min <= max <= 10000"));
        }
        if self.rtt_secs.is_some_and(|r| !in_range(r, 0.1, 3600.0)) {
            return Err(bad("rtt_secs", "[min, max] with 0.1 <= min <= max <= 3600"));
        }
        match (&self.down, self.down_mbps) {
            (Some(_), Some(_)) => return Err(bad("down_mbps", "give a `down` recording or a fixed `down_mbps`, not both")),
            (_, Some(x)) if !(x.is_finite() && x > 0.0 && x <= 100_000.0) => {
                return Err(bad("down_mbps", "must be in (0, 100000]"))
            }
            _ => {}
        }
        let up = recorded::load(&dir.join(&self.up), self.format)?;
        let down = match &self.down {
            Some(p) => Some(recorded::load(&dir.join(p), self.format)?),
            None => None,
        };
        self.loaded = Some((up, down));
        Ok(())
    }

    /// The recorded link over `samples` (one per [`STEP_US`] from 0): capacity from the
    /// recordings, looping; RTT spells drawn from `rng`, wobbling by `jitter`.
    pub(super) fn fill(&self, samples: &mut [Sample], rng: &mut Rng, jitter: f64) {
        let n = samples.len();
        // Only a loaded table reaches a spec (`TraceSpec::recorded` is private); without one
        // the link is as dead as the simulator allows.
        let (up, down) = match &self.loaded {
            Some((up, down)) => {
                let up: Vec<f64> = up.sample(STEP_US, n).into_iter().map(|x| x * self.scale).collect();
                let down = match (down, self.down_mbps) {
                    (Some(d), _) => d.sample(STEP_US, n).into_iter().map(|x| x * self.scale).collect(),
                    (None, Some(x)) => vec![x; n],
                    (None, None) => up.clone(),
                };
                (up, down)
            }
            None => (vec![MIN_MBPS; n], vec![MIN_MBPS; n]),
        };
        let (mut level, mut left) = (0.0, 0);
        for (s, (&u, &d)) in samples.iter_mut().zip(up.iter().zip(&down)) {
            if left == 0 {
                level = uniform(rng, self.rtt_ms.range());
                left = self.rtt_secs.map_or(n, |secs| steps(rng, secs));
            }
            left -= 1;
            // The phases' floor: the simulator divides by these rates, and a recorded outage
            // (a Mahimahi step with no delivery) is a very slow link, not a division by zero.
            s.up_mbps = u.max(MIN_MBPS);
            s.down_mbps = d.max(MIN_MBPS);
            s.rtt_ms = level * rng.lognormal(jitter);
        }
    }
}
