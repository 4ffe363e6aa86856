//! What crosses the link, in the simulator: the rows that compare sending the original with
//! letting the decision shape the input ([`forms_table`]), and where each option wins on a
//! steady link as its uplink varies ([`uplink_sweep`]).
//!
//! The shaped forms and their costs are the board profile's
//! ([`super::board::ModelProfile::forms`]); the decision prices them with the agent's own cost
//! model ([`crate::cost`]) and learns their real bytes and making time as the agent does
//! ([`crate::Observation::Shaped`]).

use super::board::BoardProfile;
use super::trace::{Sample, TraceSpec};
use super::world::{self, EdgeOutcome, Req};
use super::{run_with, RunOptions, Stats};
use crate::{policy_of, DecideError, PolicyKind};

/// The rows of one trace: always-local, always-offload (the original), adaptive sending the
/// original, and adaptive choosing among the original and the profile's shaped forms.
pub fn forms_table(spec: &TraceSpec) -> Result<Vec<Stats>, DecideError> {
    let timeline = spec.timeline();
    let mut rows = Vec::new();
    for (kind, shaping) in [
        (PolicyKind::AlwaysLocal, false),
        (PolicyKind::AlwaysOffload, false),
        (PolicyKind::Adaptive, false),
        (PolicyKind::Adaptive, true),
    ] {
        rows.push(run_with(spec, &timeline, policy_of(kind), RunOptions { hedge: false, shaping })?);
    }
    Ok(rows)
}

/// The names of the forms, by form id: `original`, then the profile's shaped forms of the
/// image model in name order (the ids [`Stats::sent_by_form`] counts by).
pub fn form_names(board: &BoardProfile) -> Vec<String> {
    std::iter::once("original".to_owned()).chain(board.models.efficientnet_lite0.forms.keys().cloned()).collect()
}

/// A trace like `base` (its board, requests and deadline) on a steady link of `up_mbps` up
/// (±10 % wobble), `down_mbps` down and `rtt_ms`, with an idle device and a healthy edge.
pub fn steady_link(base: &TraceSpec, up_mbps: f64, down_mbps: f64, rtt_ms: f64) -> Result<TraceSpec, DecideError> {
    let text = format!(
        "name = \"steady {up_mbps} Mbit/s\"\nseed = {seed}\nduration_s = {secs}\nfps = {fps}\ndeadline_ms = {deadline}\n\
         digits_share = 0.0\n\n[[link]]\nweight = 1.0\nsecs = [30.0, 60.0]\nup_mbps = [{up_mbps}, {up_mbps}]\n\
         down_mbps = [{down_mbps}, {down_mbps}]\nrtt_ms = [{rtt_ms}, {rtt_ms}]\n\n[[device]]\nweight = 1.0\n\
         secs = [30.0, 60.0]\ncpu_load = [0.0, 0.0]\ntemp_c = [55.0, 55.0]\n",
        seed = base.seed,
        secs = base.duration_s,
        fps = base.fps,
        deadline = base.deadline_ms,
    );
    let mut spec = TraceSpec::from_toml(&text).map_err(|e| DecideError::Parse(e.to_string()))?;
    spec.board = base.board.clone();
    spec.board_slowdown = base.board_slowdown;
    Ok(spec)
}

/// Each option's latency for one image request in an idle world on a steady link, ms, with
/// no noise, on `board` computing `board_slowdown` times slower than profiled: `local` (the faster variant), then `offload(<form>)` for the original and each
/// shaped form (making it, its bytes up, RTT, the edge's compute, the answer down).
pub fn option_costs(board: &BoardProfile, board_slowdown: f64, up_mbps: f64, down_mbps: f64, rtt_ms: f64) -> Vec<(String, f64)> {
    let r = Req::noiseless(board, true, board_slowdown);
    let s = Sample { up_mbps, down_mbps, rtt_ms, cpu_load: 0.0, temp_c: 50.0, edge_queue_ms: 0.0, edge_busy: 0.0, edge_down: false };
    let local = world::local_us(&r, true, &s).min(world::local_us(&r, false, &s));
    let mut out = vec![("local".to_owned(), local / 1e3)];
    for (id, name) in form_names(board).iter().enumerate() {
        let (encode_us, bytes) = world::shaped(&r, id as u8, &s).unwrap_or((0.0, r.up_bytes));
        let up_us = f64::from(bytes) * 8.0 / up_mbps.max(0.01);
        let edge = match world::edge_outcome_in(&r, id as u8, &s, up_us) {
            EdgeOutcome::Answer { total_us, .. } => total_us,
            _ => f64::INFINITY,
        };
        out.push((format!("offload({name})"), (encode_us + edge) / 1e3));
    }
    out
}

/// One line of [`uplink_sweep`]: the options' idle-world costs, and adaptive with shaping
/// simulated on that steady link.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Uplink, Mbit/s.
    pub up_mbps: f64,
    /// [`option_costs`] there.
    pub costs: Vec<(String, f64)>,
    /// Adaptive sending the original, over the steady-link trace.
    pub plain: Stats,
    /// Adaptive with shaping over the same trace.
    pub adaptive: Stats,
}

/// [`option_costs`] and adaptive without and with shaping at each uplink rate, on `base`'s board and
/// requests, 100 Mbit/s down, `rtt_ms` of RTT.
pub fn uplink_sweep(base: &TraceSpec, rates: &[f64], rtt_ms: f64) -> Result<Vec<SweepPoint>, DecideError> {
    rates
        .iter()
        .map(|&up| {
            let spec = steady_link(base, up, 100.0, rtt_ms)?;
            let timeline = spec.timeline();
            let plain = run_with(&spec, &timeline, policy_of(PolicyKind::Adaptive), RunOptions::default())?;
            let adaptive = run_with(&spec, &timeline, policy_of(PolicyKind::Adaptive), RunOptions { hedge: false, shaping: true })?;
            Ok(SweepPoint { up_mbps: up, costs: option_costs(&base.board, base.board_slowdown, up, 100.0, rtt_ms), plain, adaptive })
        })
        .collect()
}
