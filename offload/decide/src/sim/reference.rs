//! The hindsight reference: a schedule over the real timeline that pays for the queues its own
//! choices create, so that "vs reference" still means something where the per-request oracle
//! ([`super::world::oracle_us`], an idle runner and an idle link for every request) does not.
//!
//! Greedy, in arrival order: each request goes on the path that finishes it earliest — local
//! FP32, local INT8 (images only: the simulated board runs digits in FP32), or the edge — given
//! the local runner and the uplink as the reference's own earlier choices left them, with the
//! world's true compute and network times ([`super::world`], the same functions the policies'
//! runs are timed with):
//!
//! - **local**: one runner, first come first served; a run starts when the request arrives or
//!   when the runner frees, and takes [`world::local_us`] in the world as it is at its start.
//! - **edge**: the upload queues behind the reference's earlier uploads on the one uplink
//!   ([`world::uplink_done`]), then [`world::edge_outcome_after`] in the world at the send: RTT,
//!   the edge's queue (the trace's, other devices' load), its compute and the answer's way
//!   down. The simulated edge runs this device's requests side by side, for the policies as
//!   here. An edge that would refuse or not answer is not a path.
//! - **deadline** ([`Admission::Shed`], the reference the bars use): a request whose earliest
//!   finish is past its deadline is not run at all (it books neither the runner nor the
//!   uplink) and counts as a miss: what admission control does, with perfect foresight.
//!   [`Admission::RunAll`] runs every request however late, as an agent without admission
//!   control must: its queues say whether the per-request oracle is valid on a trace
//!   ([`super::oracle_is_valid`]).
//!
//! It is a feasible schedule, not an optimum: no reordering (the agent's runner takes the
//! shortest waiting run first, so a digits request can overtake queued images there and not
//! here), no hedging, no look-ahead (it may take the runner for a request the edge would have
//! served almost as fast, and make a later one wait). It sends no probes. With an idle system
//! — nothing waiting on the runner or the uplink — each request's time is the oracle's (to the
//! last bit where the link's rate holds over the upload: the oracle takes the rate at arrival,
//! the uplink model follows it step by step).

use super::trace::Timeline;
use super::world::{self, EdgeOutcome, Req};

/// What the reference does with a request no path can finish by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Does not run it (it books nothing) and counts it as a miss.
    Shed,
    /// Runs it anyway, on its earliest path.
    RunAll,
}

/// Where the reference put one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// On the local runner, FP32 (`true`) or INT8.
    Local {
        /// FP32 rather than INT8.
        fp32: bool,
    },
    /// On the edge.
    Edge,
}

/// One request in the reference schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The path that finished it earliest.
    pub path: Path,
    /// From arrival to the end of that path, µs.
    pub latency_us: f64,
    /// Run (always, under [`Admission::RunAll`]; under [`Admission::Shed`], when its earliest
    /// finish met its deadline). A request not run books nothing.
    pub run: bool,
    /// It waited behind the reference's own earlier choices: its time is more than 1 ms over
    /// what the same formulas give it in an idle world (no earlier run on the runner, no earlier
    /// upload on the link: the per-request oracle's assumption); for a request not run, one
    /// that the idle world would have answered in time.
    pub queued: bool,
}

/// How long past the oracle's time a request counts as [`Placement::queued`], µs.
const QUEUED_US: f64 = 1_000.0;

/// `r`'s earliest path with the runner free from `runner_free` and the uplink from
/// `uplink_free` (µs): the path, its time from arrival (µs), and when its upload would have
/// left (µs; for the edge path, the uplink's new free time).
fn earliest(r: &Req, timeline: &Timeline, runner_free: f64, uplink_free: f64) -> (Path, f64, f64) {
    let at = r.at_us as f64;
    let start = runner_free.max(at);
    let state = timeline.at(start as u64);
    let mut local = (Path::Local { fp32: true }, start + world::local_us(r, true, &state));
    if r.image {
        let int8 = start + world::local_us(r, false, &state);
        if int8 < local.1 {
            local = (Path::Local { fp32: false }, int8);
        }
    }
    let sent = world::uplink_done(timeline, uplink_free.max(at), f64::from(r.up_bytes) * r.net_noise);
    // The edge wins only when strictly earlier, as in the oracle.
    let (path, finish) = match world::edge_outcome_after(r, &timeline.at(r.at_us), sent - at) {
        EdgeOutcome::Answer { total_us, .. } if at + total_us < local.1 => (Path::Edge, at + total_us),
        _ => local,
    };
    (path, finish - at, sent)
}

/// The reference schedule of `reqs` (in arrival order, as [`world::requests`] gives them).
pub fn schedule(reqs: &[Req], timeline: &Timeline, admission: Admission) -> Vec<Placement> {
    // When the runner is free again, and when the uplink has sent every byte booked so far, µs.
    let (mut runner_free, mut uplink_free) = (0.0_f64, 0.0_f64);
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        let (path, latency_us, sent) = earliest(r, timeline, runner_free, uplink_free);
        let run = admission == Admission::RunAll || latency_us <= f64::from(r.deadline_us);
        if run {
            match path {
                Path::Local { .. } => runner_free = r.at_us as f64 + latency_us,
                Path::Edge => uplink_free = sent,
            }
        }
        // The same request in an idle world, by the same formulas: what its own queues cost it.
        let idle_us = earliest(r, timeline, 0.0, 0.0).1;
        let queued = if run { latency_us > idle_us + QUEUED_US } else { idle_us <= f64::from(r.deadline_us) };
        out.push(Placement { path, latency_us, run, queued });
    }
    out
}
