//! The truth the simulator knows and the device does not: how long each path really takes for
//! each request, from the measured profiles.

use super::rng::Rng;
use super::trace::{Sample, Timeline, TraceSpec};

/// Measured profiles (see BENCHMARKS.md): tract on this 2-core VM, one thread.
pub mod profile {
    /// efficientnet-lite0 FP32, local, ms.
    pub const IMAGE_FP32_MS: f64 = 40.0;
    /// efficientnet-lite0 INT8, local, ms (slower than FP32 on this machine).
    pub const IMAGE_INT8_MS: f64 = 60.0;
    /// digits, local, ms.
    pub const DIGITS_MS: f64 = 0.05;
    /// efficientnet-lite0 FP32 on the edge box, ms.
    pub const EDGE_IMAGE_MS: f64 = 15.0;
    /// digits on the edge box, ms.
    pub const EDGE_DIGITS_MS: f64 = 0.05;
    /// A 224×224 JPEG request, bytes.
    pub const IMAGE_UP: u32 = 150_000;
    /// A 28×28 f32 tensor request with envelope, bytes.
    pub const DIGITS_UP: u32 = 3_300;
    /// A response, bytes.
    pub const DOWN: u32 = 1_000;
    /// Slowdown per unit of background CPU load (both cores busy ⇒ 2.5×).
    pub const LOAD_K: f64 = 1.5;
    /// Where the SoC throttles, °C.
    pub const THROTTLE_C: f64 = 85.0;
}

/// One request with its own random draws (common to every policy run).
#[derive(Debug, Clone, Copy)]
pub struct Req {
    /// Arrival, µs.
    pub at_us: u64,
    /// Image (efficientnet) or digits.
    pub image: bool,
    /// Relative deadline, µs.
    pub deadline_us: u32,
    /// Multiplicative noise on local compute.
    pub local_noise: f64,
    /// On edge compute.
    pub edge_noise: f64,
    /// On the network time.
    pub net_noise: f64,
    /// Uniform draw against the edge's busy share.
    pub busy_roll: f64,
    /// The board's local compute relative to the measured profile (see
    /// [`TraceSpec::board_slowdown`]).
    pub board_slowdown: f64,
}

impl Req {
    /// Bytes up.
    pub fn up_bytes(&self) -> u32 {
        if self.image { profile::IMAGE_UP } else { profile::DIGITS_UP }
    }
}

/// The requests of a trace.
pub fn requests(spec: &TraceSpec) -> Vec<Req> {
    let mut rng = Rng::new(spec.seed ^ 0x44_44);
    let period = 1e6 / spec.fps;
    let end = u64::from(spec.duration_s) * 1_000_000;
    let mut t = period * rng.f64();
    let mut out = Vec::new();
    while (t as u64) < end {
        let image = rng.f64() >= spec.digits_share;
        out.push(Req {
            at_us: t as u64,
            image,
            deadline_us: 1000 * if image { spec.deadline_ms } else { spec.digits_deadline_ms },
            local_noise: rng.lognormal(0.05),
            edge_noise: rng.lognormal(0.05),
            net_noise: rng.lognormal(0.05),
            busy_roll: rng.f64(),
            board_slowdown: spec.board_slowdown.max(1e-3),
        });
        t += period * (0.9 + 0.2 * rng.f64());
    }
    out
}

/// The CPU clock ratio at a temperature.
pub fn freq_ratio(temp_c: f64) -> f64 {
    if temp_c <= profile::THROTTLE_C {
        1.0
    } else {
        (1.0 - 0.05 * (temp_c - profile::THROTTLE_C)).max(0.5)
    }
}

/// True local compute, µs, of a request on a variant (fp32 = true) started in state `s`.
pub fn local_us(r: &Req, fp32: bool, s: &Sample) -> f64 {
    let base = match (r.image, fp32) {
        (true, true) => profile::IMAGE_FP32_MS,
        (true, false) => profile::IMAGE_INT8_MS,
        (false, _) => profile::DIGITS_MS,
    };
    base * 1e3 * r.board_slowdown * r.local_noise * (1.0 + profile::LOAD_K * s.cpu_load) / freq_ratio(s.temp_c)
}

/// What the edge does with a request sent in state `s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EdgeOutcome {
    /// Answer after `total_us`, with the edge's reported queue and compute.
    Answer {
        /// Send to answer.
        total_us: f64,
        /// Reported queue wait.
        queue_us: f64,
        /// Reported compute.
        compute_us: f64,
    },
    /// Refused busy after `after_us`, reporting its queue.
    Busy {
        /// Send to refusal.
        after_us: f64,
        /// Reported queue wait.
        queue_us: f64,
    },
    /// Never answers.
    Silent,
}

/// The truth of one offload sent on an idle uplink.
pub fn edge_outcome(r: &Req, s: &Sample) -> EdgeOutcome {
    edge_outcome_after(r, s, f64::from(r.up_bytes()) * 8.0 / s.up_mbps.max(0.01) * r.net_noise)
}

/// The truth of one offload whose last byte leaves the device `up_us` after the send (its own
/// transfer plus any wait behind earlier sends on the same connection).
pub fn edge_outcome_after(r: &Req, s: &Sample, up_us: f64) -> EdgeOutcome {
    if s.edge_down {
        return EdgeOutcome::Silent;
    }
    let rtt = s.rtt_ms * 1e3 * r.net_noise;
    let up = up_us.max(0.0);
    let down = f64::from(profile::DOWN) * 8.0 / s.down_mbps.max(0.01) * r.net_noise;
    let queue_us = s.edge_queue_ms * 1e3;
    if r.busy_roll < s.edge_busy {
        return EdgeOutcome::Busy { after_us: rtt + up, queue_us };
    }
    let compute = if r.image { profile::EDGE_IMAGE_MS } else { profile::EDGE_DIGITS_MS } * 1e3 * r.edge_noise;
    EdgeOutcome::Answer { total_us: rtt + up + queue_us + compute + down, queue_us, compute_us: compute }
}

/// Both paths in hindsight for one request, µs, in the world as it was at arrival with an
/// idle local runner: (best local variant, edge — `None` if it would not answer).
pub fn hindsight_us(r: &Req, timeline: &Timeline) -> (f64, Option<f64>) {
    let s = timeline.at(r.at_us);
    let local = local_us(r, true, &s).min(local_us(r, false, &s));
    match edge_outcome(r, &s) {
        EdgeOutcome::Answer { total_us, .. } => (local, Some(total_us)),
        _ => (local, None),
    }
}

/// Whether the choice between the paths matters for this request: the worse one is more than
/// 10 % (and 1 ms) slower than the better (an edge that would not answer always matters).
pub fn choice_matters(r: &Req, timeline: &Timeline) -> bool {
    match hindsight_us(r, timeline) {
        (local, Some(edge)) => (local - edge).abs() > (0.1 * local.min(edge)).max(1_000.0),
        (_, None) => true,
    }
}

/// The oracle: the best latency in hindsight for one request, every path evaluated in the
/// world as it was at arrival, with an idle local runner.
pub fn oracle_us(r: &Req, timeline: &Timeline) -> (f64, bool) {
    let s = timeline.at(r.at_us);
    let local = local_us(r, true, &s).min(local_us(r, false, &s));
    match edge_outcome(r, &s) {
        EdgeOutcome::Answer { total_us, .. } if total_us < local => (total_us, true),
        _ => (local, false),
    }
}
