//! The fault suite (issue 14, "The suite, 1. Faults"): the real agent (`ferry run`), a real
//! `ferry-edge` and a real Mosquitto (TLS 1.3, the shipped ACL) in the netns testbed
//! ([`crate::bed`]), a steady request load through the agent's API throughout, and one fault
//! per scenario — broker restart, edge SIGKILL and restart, link cut 30 s, link throttled to
//! 64 kbit/s, edge answering busy, agent SIGKILL mid-request and restart, agent SIGTERM
//! mid-request, the spool's disk full — then recovery. `tests/faults.rs` runs them all and
//! regenerates RELIABILITY.md's table.
//!
//! # What is counted
//!
//! Every request of the load ends in exactly one of these, decided from what the client saw
//! on its connection ([`client::Exchange`]) and the answer's `status` and `ran`:
//!
//! - **answered**: HTTP 200 with a result, `ran` saying where: **on edge** or **local**; a
//!   local answer is a **fallback** when the agent tried the edge first (its `fallback`
//!   field: `edge_busy`, `edge_error`, `edge_timeout`, `deadline_at_risk`).
//! - **deadline miss**: a 504 `deadline_exceeded` answer, or a 200 that came later than the
//!   request's deadline (measured by the client). A miss is still an answer.
//! - **clear error**: a JSON error answer (`503 busy`, `503 shutting_down`, any other status
//!   with `{"error": …}`), or a connection refused while the agent is not running (killed,
//!   stopped, starting again: the client knows at once its request was not taken). A
//!   refusal at any other time is a failed check: the agent died.
//! - **cut by the kill**: the agent was SIGKILLed while the request was on the connection,
//!   which closed with no answer. The client was told (its connection reset) — counted apart,
//!   and only for a request sent before the kill whose connection ended within 1 s after it.
//!   A cut at any other time, SIGTERM included, is a lost request.
//! - **lost**: a request that got no answer and no error within the agent's deadline plus
//!   [`load::LoadConfig::timeout`], or a cut outside a kill, or bytes that are not one HTTP
//!   answer. Must be 0.
//! - **duplicated**: a request that got two answers (bytes after the answer on its
//!   connection), an answer with a request id another answer also carried, or an answer
//!   whose class is the other image's (another request's answer); and, from the edge's own
//!   counters at its stop, answers beyond the messages it received. Must be 0.
//! - **offload back after**: from the end of the fault (the broker, edge or agent started
//!   again, the link restored, the flood stopped, the disk freed) to the first answer from
//!   the edge to a request sent after it, s. It must come within
//!   [`scenarios::RECOVERY_BOUND_S`] ([`scenarios::THROTTLE_RECOVERY_BOUND_S`] after the
//!   throttle: probes on a slow link are spaced out by design).
//!
//! Only what cannot depend on this machine's speed is asserted: nothing lost, nothing
//! duplicated, every request one answer or a clear error, the offload path back within the
//! bound, and that the fault happened (no edge answer while the edge was unreachable; the
//! flooded edge answered busy; a telemetry record failed to spool while the disk was full).
//! The counts themselves are reported, never asserted.
//!
//! # Layout
//! - [`client`]: one request over the API socket, observed at the byte level.
//! - [`load`]: the steady open-loop load and its records.
//! - [`figures`]: records → figures and the speed-independent checks.
//! - [`scenarios`]: each fault on a bed of its own: injection, timing, evidence.
//! - [`report`]: the table, written between markers in RELIABILITY.md.
//! - [`soak`]: random faults for half an hour on one bed, memory sampled (not in the default
//!   run).

pub mod client;
pub mod figures;
pub mod load;
pub mod report;
pub mod scenarios;
pub mod soak;

use std::sync::Arc;

use crate::bed::MODEL;
use crate::harness::{local_top1, repo_root};
use load::Image;

/// The images the load alternates between.
pub const IMAGES: [&str; 2] = ["models/images/espresso.jpg", "models/images/cat.jpg"];

/// The load's images, each with its top-1 class from local FP32 inference.
pub fn images() -> Arc<Vec<Image>> {
    Arc::new(
        IMAGES
            .iter()
            .map(|&name| Image {
                name,
                bytes: std::fs::read(repo_root().join(name))
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
                top1: local_top1(MODEL, name) as u64,
            })
            .collect(),
    )
}

/// The load, in words, for the report.
pub fn load_description() -> String {
    let l = scenarios::LOAD;
    format!(
        "one request every {} ms through the agent's Unix-socket API (open loop: each on its own connection and thread), \
         alternating {} (80 KB) and {} (38 KB) for {MODEL}, each with deadline_ms={}; the agent is a Pi-class emulated \
         board (local compute stretched 4×, adaptive policy) on a 100 Mbit/s veth link to the edge namespace (Mosquitto, \
         ferry-edge with one worker). Each scenario: a fresh bed, {} s of load (and until the edge has answered), the \
         fault, load until the offload path is back (at most {} s; {} s after the throttle), {} s more.",
        l.period.as_millis(),
        IMAGES[0],
        IMAGES[1],
        l.deadline_ms,
        scenarios::WARM_S,
        scenarios::RECOVERY_BOUND_S,
        scenarios::THROTTLE_RECOVERY_BOUND_S,
        scenarios::POST_S,
    )
}
