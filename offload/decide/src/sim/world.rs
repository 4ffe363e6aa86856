//! The truth the simulator knows and the device does not: how long each path really takes for
//! each request, from the trace's [`BoardProfile`] (see [`super::board`]).

use super::board::BoardProfile;
use super::rng::Rng;
use super::trace::{self, Sample, Timeline, TraceSpec};
use crate::config::MAX_FORMS;

/// The per-request wobble of the network time (log-σ of its log-normal factor): a property of
/// the simulated link, not of the board, so not in the [`BoardProfile`].
const NET_SIGMA: f64 = 0.05;

/// How much the clock drops per °C above the throttle point, and the lowest ratio it reaches:
/// the simulator's throttling model, the same for every board (only the point is the board's).
const THROTTLE_PER_C: f64 = 0.05;
const MIN_FREQ_RATIO: f64 = 0.5;

/// One request with its own random draws (common to every policy run), and the board's
/// figures for its model.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    /// Arrival, µs.
    pub at_us: u64,
    /// Image (efficientnet) or digits.
    pub image: bool,
    /// Relative deadline, µs.
    pub deadline_us: u32,
    /// Local compute at one thread, ms, FP32 then INT8 (for digits both FP32: the simulated
    /// board runs digits in FP32 only, see `SIM_CONFIG`).
    pub local_ms: [f64; 2],
    /// Multiplicative noise on local compute, per variant (one draw, each variant's σ).
    pub local_noise: [f64; 2],
    /// The edge's compute, ms.
    pub edge_ms: f64,
    /// On edge compute.
    pub edge_noise: f64,
    /// On the network time.
    pub net_noise: f64,
    /// Uniform draw against the edge's busy share.
    pub busy_roll: f64,
    /// The board's local compute relative to its profile (see [`TraceSpec::board_slowdown`]).
    pub board_slowdown: f64,
    /// The profile's background-load slowdown per unit of load.
    pub load_k: f64,
    /// The profile's throttle point, °C.
    pub throttle_c: f64,
    /// Bytes up.
    pub up_bytes: u32,
    /// Bytes down.
    pub down_bytes: u32,
    /// The shaped forms of its input (the profile's, in name order; see
    /// [`super::board::ModelProfile::forms`]): form `k` is element `k - 1`.
    pub forms: [FormTruth; MAX_FORMS],
    /// How many of `forms` there are.
    pub form_count: u8,
}

/// One shaped form of a request's input, as it really is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FormTruth {
    /// On the wire, bytes.
    pub up_bytes: u32,
    /// Making it on the board at no load, ms.
    pub encode_ms: f64,
    /// The edge's compute for it as a share of the whole model's.
    pub edge_share: f64,
}

/// A model's shaped forms from its profile, in name order (the order the simulator's
/// `[[forms]]` config lists them, so form ids agree).
pub fn form_truths(m: &super::board::ModelProfile) -> ([FormTruth; MAX_FORMS], u8) {
    let mut out = [FormTruth::default(); MAX_FORMS];
    let mut n = 0u8;
    for (slot, f) in out.iter_mut().zip(m.forms.values()) {
        *slot = FormTruth { up_bytes: f.up_bytes, encode_ms: f.encode_ms, edge_share: f.edge_share };
        n += 1;
    }
    (out, n)
}

impl Req {
    /// A request for the image model (`true`) or digits on `board`, computing
    /// `board_slowdown` times slower than profiled, at 0 with no deadline and no noise: the
    /// board's figures, which [`requests`] then gives its draws.
    pub fn noiseless(board: &BoardProfile, image: bool, board_slowdown: f64) -> Req {
        let m = board.model(image);
        let (fp32, int8) = (m.fp32.threads_1, if image { m.int8.threads_1 } else { m.fp32.threads_1 });
        let (forms, form_count) = form_truths(m);
        Req {
            at_us: 0,
            image,
            deadline_us: u32::MAX,
            local_ms: [fp32.mean_ms, int8.mean_ms],
            local_noise: [1.0, 1.0],
            edge_ms: m.edge.mean_ms,
            edge_noise: 1.0,
            net_noise: 1.0,
            busy_roll: 1.0,
            board_slowdown: board_slowdown.max(1e-3),
            load_k: board.cpu.load_k,
            throttle_c: board.cpu.throttle_c,
            up_bytes: m.up_bytes,
            down_bytes: m.down_bytes,
            forms,
            form_count,
        }
    }
}

/// The requests of a trace, on the trace's board.
pub fn requests(spec: &TraceSpec) -> Vec<Req> {
    let board: &BoardProfile = &spec.board;
    let mut rng = Rng::new(spec.seed ^ 0x44_44);
    let period = 1e6 / spec.fps;
    let end = u64::from(spec.duration_s) * 1_000_000;
    let mut t = period * rng.f64();
    let mut out = Vec::new();
    while (t as u64) < end {
        let image = rng.f64() >= spec.digits_share;
        let m = board.model(image);
        let (fp32, int8) = (m.fp32.threads_1, if image { m.int8.threads_1 } else { m.fp32.threads_1 });
        // The draws in the order the simulator has always made them, so a profile holding the
        // old constants replays the old runs exactly.
        let z_local = rng.normal();
        let z_edge = rng.normal();
        out.push(Req {
            at_us: t as u64,
            deadline_us: 1000 * if image { spec.deadline_ms } else { spec.digits_deadline_ms },
            local_noise: [(fp32.log_sigma() * z_local).exp(), (int8.log_sigma() * z_local).exp()],
            edge_noise: (m.edge.log_sigma() * z_edge).exp(),
            net_noise: rng.lognormal(NET_SIGMA),
            busy_roll: rng.f64(),
            ..Req::noiseless(board, image, spec.board_slowdown)
        });
        t += period * (0.9 + 0.2 * rng.f64());
    }
    out
}

/// The CPU clock ratio at a temperature, on a board that throttles above `throttle_c`.
pub fn freq_ratio(throttle_c: f64, temp_c: f64) -> f64 {
    if temp_c <= throttle_c {
        1.0
    } else {
        (1.0 - THROTTLE_PER_C * (temp_c - throttle_c)).max(MIN_FREQ_RATIO)
    }
}

/// True local compute, µs, of a request on a variant (fp32 = true) started in state `s`.
pub fn local_us(r: &Req, fp32: bool, s: &Sample) -> f64 {
    let v = usize::from(!fp32);
    on_board_us(r, r.local_ms[v], r.local_noise[v], s)
}

/// `ms` of the board's CPU work, µs, with its draw `noise`, for a request on its board in
/// state `s`: slower with background load and throttling.
fn on_board_us(r: &Req, ms: f64, noise: f64, s: &Sample) -> f64 {
    ms * 1e3 * r.board_slowdown * noise * (1.0 + r.load_k * s.cpu_load) / freq_ratio(r.throttle_c, s.temp_c)
}

/// True time to make shaped form `form` (≥ 1) of a request's input in state `s`, µs, and its
/// bytes; `None` for the original or a form the request's model does not have. It slows down
/// with the board as FP32 compute does (same draw).
pub fn shaped(r: &Req, form: u8, s: &Sample) -> Option<(f64, u32)> {
    let k = usize::from(form).checked_sub(1)?;
    if k >= usize::from(r.form_count) {
        return None;
    }
    let f = r.forms[k];
    Some((on_board_us(r, f.encode_ms, r.local_noise[0], s), f.up_bytes))
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

/// When `bytes` queued on the uplink at `from_us` (after every byte queued before them has
/// left) have all left, µs: they drain at the link's rate as it changes over the timeline.
/// The one model of the shared uplink, for the policies' runs and the hindsight reference.
pub fn uplink_done(timeline: &Timeline, from_us: f64, bytes: f64) -> f64 {
    let mut t = from_us.max(0.0);
    let mut bits = bytes.max(0.0) * 8.0;
    // Bounded: at the slowest rate a trace allows (0.05 Mbit/s) a 150 KB request needs
    // 240 steps; the cap only guards against a malformed timeline.
    for _ in 0..1_000_000 {
        if bits <= 0.0 {
            break;
        }
        let step_end = ((t as u64) / trace::STEP_US + 1) * trace::STEP_US;
        let rate = timeline.at(t as u64).up_mbps.max(0.01); // bits per µs
        let span = step_end as f64 - t;
        if bits <= rate * span {
            t += bits / rate;
            bits = 0.0;
        } else {
            bits -= rate * span;
            t = step_end as f64;
        }
    }
    t
}

/// The truth of one offload sent on an idle uplink.
pub fn edge_outcome(r: &Req, s: &Sample) -> EdgeOutcome {
    edge_outcome_after(r, s, f64::from(r.up_bytes) * 8.0 / s.up_mbps.max(0.01) * r.net_noise)
}

/// The truth of one offload of the original input whose last byte leaves the device `up_us`
/// after the send (its own transfer plus any wait behind earlier sends on the same connection).
pub fn edge_outcome_after(r: &Req, s: &Sample, up_us: f64) -> EdgeOutcome {
    edge_outcome_in(r, 0, s, up_us)
}

/// [`edge_outcome_after`] for the input sent in `form` (0 the original): the edge computes
/// the form's share of the whole model (a split's tail).
pub fn edge_outcome_in(r: &Req, form: u8, s: &Sample, up_us: f64) -> EdgeOutcome {
    let share = usize::from(form)
        .checked_sub(1)
        .filter(|&k| k < usize::from(r.form_count))
        .map_or(1.0, |k| r.forms[k].edge_share);
    if s.edge_down {
        return EdgeOutcome::Silent;
    }
    let rtt = s.rtt_ms * 1e3 * r.net_noise;
    let up = up_us.max(0.0);
    let down = f64::from(r.down_bytes) * 8.0 / s.down_mbps.max(0.01) * r.net_noise;
    let queue_us = s.edge_queue_ms * 1e3;
    if r.busy_roll < s.edge_busy {
        return EdgeOutcome::Busy { after_us: rtt + up, queue_us };
    }
    let compute = r.edge_ms * 1e3 * r.edge_noise * share;
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
