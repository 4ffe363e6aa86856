//! The trace-driven simulator: replays a trace against the real [`Decider`] and
//! [`RequestMachine`] (the code the agent runs), with compute times and byte counts from a
//! board profile ([`board`]).
//!
//! The decider learns only from what the device could observe — its system probes every
//! 100 ms, the timings of its own local runs, offload answers with the edge's reported
//! timings, refusals, timeouts, and probes. Only the oracle sees the world itself.
//!
//! # Layout
//!
//! - [`trace`]: a trace file (TOML) → a 100 ms [`Timeline`]: link, device and edge phases.
//! - [`recorded`]: recorded links (Mahimahi packet-delivery files, cooked `time_s Mbit/s`
//!   logs) → a looping capacity series; [`replay`]: the `[recorded]` table that puts one in a
//!   trace in place of the link phases, with RTT beside it.
//! - [`board`]: the board profile (local and edge compute, request and answer bytes, load and
//!   throttling), read from a file; [`world`]: the truth per request (compute and network
//!   times) on that board; [`rng`]: the seeded draws.
//! - this module: the event loop that drives the real decider and request machines, the
//!   per-request oracle, the statistics ([`Stats`]) and [`table`]; [`reference`]: the
//!   hindsight schedule that pays for its own queues (the reference where the oracle, which
//!   assumes an idle runner and link per request, is no bound).
//! - [`shaping`]: the rows that compare sending the original with shaped forms of the input
//!   (the board profile's), and where each option wins as a steady uplink varies.

pub mod board;
pub mod recorded;
pub mod reference;
pub mod replay;
pub mod rng;
pub mod shaping;
pub mod trace;
pub mod world;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::config::Config;
use super::cost::RequestInfo;
use super::decider::Decider;
use super::estimators::Observation;
use super::outcome::{OffloadEnd, OffloadWatch, StopCause};
use super::local::SystemState;
use super::policy::Policy;
use super::queue;
use super::scheduler::{offload_stop_cause, Action, AnswerKind, Event, Ran, RequestMachine};
use super::config::{FormConfig, TargetConfig, MAX_FORMS};
use super::targets::{FormId, ModelId, TargetId, TargetKind};
use world::{EdgeOutcome, Req};

pub use board::{BoardProfile, ProfileError};
pub use trace::{Timeline, TraceError, TraceSpec};

/// The board the simulator models: efficientnet-lite0 FP32 and INT8 and digits locally, one
/// edge endpoint.
pub const SIM_CONFIG: &str = r#"
[decide]
probe_after_ms = 500

[thermal]
throttle_point_c = 85.0
set_point_c = 78.0

[[targets]]
kind = "local"
name = "local-fp32"
model = "efficientnet-lite0"
precision = "fp32"
prior_ms = 50.0

[[targets]]
kind = "local"
name = "local-int8"
model = "efficientnet-lite0"
precision = "int8"
priority = 1
prior_ms = 50.0

[[targets]]
kind = "local"
name = "digits-fp32"
model = "digits"
precision = "fp32"
prior_ms = 1.0

[[targets]]
kind = "edge"
name = "edge"
endpoint = "mqtts://edge:8883"
priority = 2
timeout_ms = 1000
"#;

/// Results of one policy (or reference) on one trace.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Policy name.
    pub policy: String,
    /// Requests.
    pub requests: usize,
    /// Requests answered at least once (must equal `requests`: the others are lost).
    pub answers: usize,
    /// Requests answered more than once (must be 0).
    pub duplicate_answers: usize,
    /// Failed answers (no result).
    pub failed: usize,
    /// Mean latency, ms, over the answers that were not shed (see [`Stats::shed`]).
    pub mean_ms: f64,
    /// 95th percentile, ms, over the same answers.
    pub p95_ms: f64,
    /// Answers later than the deadline, or failed.
    pub misses: usize,
    /// Share answered by the edge.
    pub offload_share: f64,
    /// Fallbacks (busy, error, timeout, at risk).
    pub fallbacks: usize,
    /// Probes sent.
    pub probes: usize,
    /// Bytes the probes took, up and down ([`PROBE_UP_BYTES`] + [`PROBE_DOWN_BYTES`] each).
    pub probe_bytes: u64,
    /// The trace's length, s (what [`Stats::probe_bytes_per_s`] divides by).
    pub duration_s: f64,
    /// Requests answered `deadline_exceeded` or `busy` (shed at once, or at deadline + grace).
    pub shed: usize,
    /// Requests answered from the other kind of path than the oracle's (edge vs local) where
    /// that choice mattered (the other path was more than 10 % slower in hindsight, see
    /// [`world::choice_matters`]), or not answered with a result: how often the policy was on
    /// the wrong side.
    pub wrong_path: usize,
    /// Requests answered with a result within their deadline.
    pub in_time: usize,
    /// Mean latency over the answers in time, ms (0 if none).
    pub in_time_mean_ms: f64,
    /// 95th percentile over the answers in time, ms.
    pub in_time_p95_ms: f64,
    /// How late the latest answer came past its deadline, ms (0 if none was late): what the
    /// "deadline + grace" bar is about. Answers without a result count.
    pub max_late_ms: f64,
    /// Per request (arrival order), its latency in ms if it was answered with a result in
    /// time, else `None`: for comparing two rows over the requests both answered in time
    /// ([`paired_in_time`]).
    pub in_time_by_request: Vec<Option<f64>>,
    /// The hindsight reference's rows only ([`reference`]): requests its schedule made wait
    /// behind its own earlier choices ([`reference::Placement::queued`]). 0 elsewhere (not
    /// measured for policies).
    pub queued: usize,
    /// Offloads sent, per form of the input (index: [`FormId`]; 0 the original, then the
    /// board profile's forms in name order). Empty for the oracle and the reference.
    pub sent_by_form: Vec<usize>,
}

impl Stats {
    /// Share of requests answered with a result within their deadline.
    pub fn deadline_met_share(&self) -> f64 {
        self.in_time as f64 / self.requests.max(1) as f64
    }

    /// Requests never answered.
    pub fn lost(&self) -> usize {
        self.requests.saturating_sub(self.answers)
    }

    /// Probe traffic over the trace, bytes per second.
    pub fn probe_bytes_per_s(&self) -> f64 {
        if self.duration_s > 0.0 { self.probe_bytes as f64 / self.duration_s } else { 0.0 }
    }
}

/// One answer, as the statistics see it.
#[derive(Debug, Clone, Copy)]
struct Answered {
    /// The request's index (arrival order).
    req: usize,
    /// From arrival to answer, µs.
    us: f64,
    /// The request's relative deadline, µs.
    deadline_us: f64,
    /// With a result.
    ok: bool,
    /// From the edge.
    edge: bool,
    /// Answered `deadline_exceeded` or `busy`: not in the mean and p95 over every answer.
    shed: bool,
}

impl Answered {
    fn in_time(&self) -> bool {
        self.ok && self.us <= self.deadline_us
    }
}

/// Mean and 95th percentile, sorting `ms` in place; zeros if empty. The simulator's tables
/// and the testbed's (`tests/testbed_compare.rs`) use this one rule.
pub fn mean_p95(ms: &mut [f64]) -> (f64, f64) {
    let n = ms.len().max(1);
    ms.sort_by(f64::total_cmp);
    let p95 = ms.get(((n as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    (ms.iter().sum::<f64>() / n as f64, p95)
}

fn summarize(policy: &str, answered: &[Answered], duration_s: f64) -> Stats {
    let n = answered.len().max(1);
    let mut all: Vec<f64> = answered.iter().filter(|a| !a.shed).map(|a| a.us / 1e3).collect();
    let mut in_time: Vec<f64> = answered.iter().filter(|a| a.in_time()).map(|a| a.us / 1e3).collect();
    let (mean_ms, p95_ms) = mean_p95(&mut all);
    let (in_time_mean_ms, in_time_p95_ms) = mean_p95(&mut in_time);
    let late = answered.iter().map(|a| a.us - a.deadline_us).fold(0.0, f64::max);
    Stats {
        policy: policy.to_owned(),
        requests: answered.len(),
        answers: answered.len(),
        mean_ms,
        p95_ms,
        misses: answered.iter().filter(|a| !a.in_time()).count(),
        offload_share: answered.iter().filter(|a| a.ok && a.edge).count() as f64 / n as f64,
        duration_s,
        in_time: in_time.len(),
        in_time_mean_ms,
        in_time_p95_ms,
        max_late_ms: late / 1e3,
        shed: answered.iter().filter(|a| a.shed).count(),
        in_time_by_request: {
            let mut by = vec![None; answered.iter().map(|a| a.req + 1).max().unwrap_or(0)];
            // A request answered twice (a defect `duplicate_answers` counts) keeps its first.
            for a in answered.iter().rev().filter(|a| a.in_time()) {
                by[a.req] = Some(a.us / 1e3);
            }
            by
        },
        ..Stats::default()
    }
}

/// Two rows over the requests both answered in time: (their count, `a`'s mean, `b`'s mean),
/// ms. The mean over a row's own answers in time rewards answering fewer (a policy that meets
/// only the easy deadlines has a low one); over the same requests it does not.
pub fn paired_in_time(a: &Stats, b: &Stats) -> (usize, f64, f64) {
    let both: Vec<(f64, f64)> =
        a.in_time_by_request.iter().zip(&b.in_time_by_request).filter_map(|(x, y)| Some(((*x)?, (*y)?))).collect();
    let n = both.len().max(1) as f64;
    (both.len(), both.iter().map(|p| p.0).sum::<f64>() / n, both.iter().map(|p| p.1).sum::<f64>() / n)
}

/// The oracle's row: per request, the best path in hindsight, each in an idle world.
pub fn oracle(spec: &TraceSpec, timeline: &Timeline) -> Stats {
    let reqs = world::requests(spec);
    let answered: Vec<Answered> = reqs
        .iter()
        .enumerate()
        .map(|(req, r)| {
            let (us, edge) = world::oracle_us(r, timeline);
            Answered { req, us, deadline_us: f64::from(r.deadline_us), ok: true, edge, shed: false }
        })
        .collect();
    summarize("oracle", &answered, f64::from(spec.duration_s))
}

/// The hindsight reference's row ([`reference::schedule`]). Under [`reference::Admission::Shed`]
/// (row `reference`, the one the bars use) a request it does not run (no path could meet the
/// deadline) counts as answered without a result at its deadline, the latest an agent with
/// admission control answers it (grace aside), and on the wrong path. Under
/// [`reference::Admission::RunAll`] (row `reference-run-all`) every request is answered.
pub fn reference(spec: &TraceSpec, timeline: &Timeline, admission: reference::Admission) -> Stats {
    let reqs = world::requests(spec);
    let plan = reference::schedule(&reqs, timeline, admission);
    let answered: Vec<Answered> = reqs
        .iter()
        .zip(&plan)
        .enumerate()
        .map(|(req, (r, p))| {
            let deadline_us = f64::from(r.deadline_us);
            let edge = p.path == reference::Path::Edge;
            if p.run {
                Answered { req, us: p.latency_us, deadline_us, ok: true, edge, shed: false }
            } else {
                Answered { req, us: deadline_us, deadline_us, ok: false, edge, shed: true }
            }
        })
        .collect();
    let name = match admission {
        reference::Admission::Shed => "reference",
        reference::Admission::RunAll => "reference-run-all",
    };
    let mut stats = summarize(name, &answered, f64::from(spec.duration_s));
    stats.failed = plan.iter().filter(|p| !p.run).count();
    stats.queued = plan.iter().filter(|p| p.queued).count();
    stats.wrong_path = reqs
        .iter()
        .zip(&plan)
        .filter(|(r, p)| {
            let on_edge = p.path == reference::Path::Edge;
            !p.run || (on_edge != world::oracle_us(r, timeline).1 && world::choice_matters(r, timeline))
        })
        .count();
    stats
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Tick,
    Arrive(usize),
    LocalDone(usize),
    Edge(usize, u8),
    Timer(usize, u64),
    /// An abandoned offload's timeout passed.
    Expire(usize),
    /// A probe's outcome, and how long its bytes took to leave (queue included), µs.
    Probe(u8, u32),
    /// A request's input has been made into its shaped form: its offload to the edge leaves.
    Send(usize, u8),
}

/// How [`run_with`] runs a policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// `[decide] hedge`.
    pub hedge: bool,
    /// Offer the edge the board profile's shaped forms of the image model's input
    /// ([`board::ModelProfile::forms`]); without, every offload sends the original.
    pub shaping: bool,
}

const EDGE_OK: u8 = 0;
/// `timeout_ms` of the edge in [`SIM_CONFIG`], µs.
const EDGE_TIMEOUT_US: u64 = 1_000_000;
const EDGE_BUSY: u8 = 1;
const PROBE_OK: u8 = 0;
const PROBE_FAIL: u8 = 1;
/// A probe's bytes up (as the agent sends).
pub const PROBE_UP_BYTES: f64 = 16_384.0;
/// A probe answer's bytes down.
pub const PROBE_DOWN_BYTES: f64 = 64.0;

struct Sim<'a> {
    timeline: &'a Timeline,
    reqs: Vec<Req>,
    decider: Decider,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    machines: Vec<Option<RequestMachine>>,
    timer_at: Vec<u64>,
    /// Per request: when its offload was sent, and what the device learns of it (the agent's
    /// own rules). An offload abandoned for a faster local answer still ends later (answer
    /// within the edge timeout, or expiry) and teaches the estimators.
    offload: Vec<Option<(u64, OffloadWatch)>>,
    edge_reply: Vec<Option<EdgeOutcome>>,
    /// Per request: the upload backlog the device predicted when it sent the offload, µs.
    offload_backlog_us: Vec<u64>,
    /// Waiting local runs: request, target, order key ([`crate::queue::order_key`]).
    local_queue: VecDeque<(usize, TargetId, u64)>,
    /// When the uplink has sent every byte queued so far, µs.
    uplink_free_at: f64,
    local_running: Option<(usize, TargetId, u64)>,
    local_cancelled: Vec<bool>,
    answers: Vec<u32>,
    answered: Vec<Answered>,
    failed: usize,
    /// Per request: the oracle ran it on the edge; the choice mattered.
    oracle_edge: Vec<(bool, bool)>,
    wrong_path: usize,
    fallbacks: usize,
    probes: usize,
    image: ModelId,
    digits: ModelId,
    edge_target: TargetId,
    /// The board's throttle point, °C (what its clock does is part of what the device probes).
    throttle_c: f64,
    /// Shaped forms are offered.
    shaping: bool,
    /// Per request: the form its offload sends (the decision's).
    form: Vec<FormId>,
    /// Per request: its offload was cancelled before it left (while its form was being made).
    offload_cancelled: Vec<bool>,
    /// Per request: the shaped input made for its offload (time to make it, µs; its bytes).
    shaped: Vec<Option<(f64, u32)>>,
    /// Offloads sent per form.
    sent_by_form: Vec<usize>,
}

impl Sim<'_> {
    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    fn system(&self, now: u64) -> SystemState {
        let s = self.timeline.at(now);
        SystemState { cpu_load: s.cpu_load, freq_ratio: world::freq_ratio(self.throttle_c, s.temp_c), temp_c: s.temp_c }
    }

    /// Queues `bytes` on the uplink at `now`: they go after the bytes already queued, at the
    /// link's rate as it changes over the timeline. Returns when the last of them has left, µs.
    /// Bytes once sent stay sent: an offload the request stops waiting for still occupies the
    /// link.
    fn uplink_send(&mut self, now: u64, bytes: f64) -> f64 {
        let t = world::uplink_done(self.timeline, self.uplink_free_at.max(now as f64), bytes);
        self.uplink_free_at = t;
        t
    }

    fn start_next_local(&mut self, now: u64) {
        if self.local_running.is_some() {
            return;
        }
        // As the agent's gate does: least order key first (shortest first with aging, keys
        // fixed when queued), FIFO among equals.
        let next = self.local_queue.iter().enumerate().min_by_key(|(pos, &(_, _, key))| (key, *pos)).map(|(pos, _)| pos);
        if let Some((i, t, _)) = next.and_then(|pos| self.local_queue.remove(pos)) {
            let fp32 = t != TargetId(1);
            let dur = world::local_us(&self.reqs[i], fp32, &self.timeline.at(now)) as u64;
            self.local_running = Some((i, t, now));
            self.decider.observe(Observation::LocalStarted(t), now);
            self.at(now + dur.max(1), Ev::LocalDone(i));
            self.feed(i, Event::LocalStarted, now, false);
        }
    }

    fn perform(&mut self, i: usize, actions: &[Action], now: u64, from_timer: bool) {
        for a in actions {
            match *a {
                Action::StartLocal(t) => {
                    // The gate's bound (a fallback may find the queue full since the decision).
                    let max = self.decider.config().local_queue_max;
                    if queue::is_full(self.local_queue.len(), self.local_running.is_some(), max) {
                        self.feed(i, Event::LocalBusy, now, false);
                        continue;
                    }
                    self.decider.observe(Observation::LocalQueued(t), now);
                    let cost = self.decider.estimators().local_compute_us(t).0;
                    let key = queue::order_key(now, cost, self.decider.config().aging_factor);
                    self.local_queue.push_back((i, t, key));
                    self.start_next_local(now);
                }
                Action::StartOffload(t) => {
                    // A shaped form is made on the board first; its offload leaves when it is.
                    let form = self.form[i];
                    match world::shaped(&self.reqs[i], form.0, &self.timeline.at(now)) {
                        Some(made) => {
                            self.shaped[i] = Some(made);
                            self.at(now + made.0.max(1.0) as u64, Ev::Send(i, t.0));
                        }
                        None => self.send_offload(i, t, FormId::ORIGINAL, self.reqs[i].up_bytes, now),
                    }
                }
                Action::SetTimer(t) => {
                    self.timer_at[i] = t;
                    self.at(t.max(now), Ev::Timer(i, t));
                }
                Action::CancelLocal => {
                    if let Some(pos) = self.local_queue.iter().position(|&(j, _, _)| j == i) {
                        if let Some((_, t, _)) = self.local_queue.remove(pos) {
                            self.decider.observe(Observation::LocalDropped(t), now);
                        }
                    } else if self.local_running.is_some_and(|(j, _, _)| j == i) {
                        // Running: the agent's tract runner stops before its next node (modelled
                        // as at once, a node being ~1/60 of a run); the board is free again.
                        if let Some((_, t, started)) = self.local_running.take() {
                            let obs = Observation::LocalStopped { target: t, ran_us: clamp_u32(now.saturating_sub(started)) };
                            self.decider.observe(obs, now);
                        }
                        self.local_cancelled[i] = true;
                        self.start_next_local(now);
                    }
                }
                Action::CancelOffload => {
                    let Some((sent, mut watch)) = self.offload[i] else {
                        self.offload_cancelled[i] = true;
                        continue;
                    };
                    let cause = offload_stop_cause(actions, from_timer);
                    if let Some(obs) = watch.stop_waiting(cause, self.reported_us(i, sent, now)) {
                        self.decider.observe(obs, now);
                    }
                    self.offload[i] = Some((sent, watch));
                    if cause == StopCause::Overtaken {
                        // If no answer comes within the timeout, the device notes it then.
                        self.at(sent.saturating_add(EDGE_TIMEOUT_US), Ev::Expire(i));
                    }
                }
                Action::Answer(ans) => {
                    self.answers[i] += 1;
                    let ran_edge = matches!(ans.ran, Ran::Edge(_));
                    let deadline_us = f64::from(self.reqs[i].deadline_us);
                    // A shed answer's latency is that of a refusal, not of a run: it would
                    // flatter the mean. It is counted in `shed` and `misses`.
                    let shed = matches!(ans.kind, AnswerKind::DeadlineExceeded | AnswerKind::Busy);
                    self.answered.push(Answered { req: i, us: ans.latency_us as f64, deadline_us, ok: ans.ok, edge: ran_edge, shed });
                    if !ans.ok {
                        self.failed += 1;
                    }
                    let (oracle_edge, matters) = self.oracle_edge.get(i).copied().unwrap_or((false, true));
                    if !ans.ok || (ran_edge != oracle_edge && matters) {
                        self.wrong_path += 1;
                    }
                    if ans.fallback.is_some() {
                        self.fallbacks += 1;
                    }
                }
            }
        }
    }

    /// Sends request `i`'s offload to `t` now, its input in `form` of `up_bytes`.
    fn send_offload(&mut self, i: usize, t: TargetId, form: FormId, up_bytes: u32, now: u64) {
        // As the agent does: what the device predicts it waits behind its own uploads is
        // taken off what its answer teaches about the link.
        let backlog = self.decider.estimators().edge(t).uplink_wait_us(now) as u64;
        let (watch, sent) = OffloadWatch::sent(t, self.model_of(i), form, up_bytes, self.reqs[i].down_bytes);
        self.decider.observe(sent, now);
        self.offload[i] = Some((now, watch));
        self.offload_backlog_us[i] = backlog;
        if let Some(n) = self.sent_by_form.get_mut(usize::from(form.0)) {
            *n += 1;
        }
        let sample = self.timeline.at(now);
        let r = self.reqs[i];
        let done = self.uplink_send(now, f64::from(up_bytes) * r.net_noise);
        let out = world::edge_outcome_in(&r, form.0, &sample, done - now as f64);
        self.edge_reply[i] = Some(out);
        match out {
            EdgeOutcome::Answer { total_us, .. } => self.at(now + total_us as u64, Ev::Edge(i, EDGE_OK)),
            EdgeOutcome::Busy { after_us, .. } => self.at(now + after_us as u64, Ev::Edge(i, EDGE_BUSY)),
            EdgeOutcome::Silent => {}
        }
    }

    /// What the device reports of an offload's time from `sent` to `now`: as the agent's
    /// executor does, without the wait behind its own earlier uploads predicted at the send.
    fn reported_us(&self, i: usize, sent: u64, now: u64) -> u32 {
        clamp_u32(now.saturating_sub(sent).saturating_sub(self.offload_backlog_us[i]))
    }

    /// Request `i`'s model.
    fn model_of(&self, i: usize) -> ModelId {
        if self.reqs[i].image { self.image } else { self.digits }
    }

    /// Request `i`'s offload ended as `end` at `now`: what the device learns, by the agent's rules.
    fn offload_ended(&mut self, i: usize, end: OffloadEnd, now: u64) {
        let Some((sent, mut watch)) = self.offload[i] else { return };
        if let Some(obs) = watch.ended(end, self.reported_us(i, sent, now)) {
            self.decider.observe(obs, now);
        }
        self.offload[i] = Some((sent, watch));
    }

    fn feed(&mut self, i: usize, ev: Event, now: u64, from_timer: bool) {
        if let Some(m) = self.machines[i].as_mut() {
            let actions = m.handle(ev, now);
            self.perform(i, &actions, now, from_timer);
        }
    }

    fn step(&mut self, now: u64, ev: Ev) {
        match ev {
            Ev::Tick => {
                let s = self.system(now);
                self.decider.observe(Observation::System(s), now);
                if let Some(t) = self.decider.probe_due(now) {
                    self.probes += 1;
                    self.decider.observe(Observation::ProbeSent(t), now);
                    let s = self.timeline.at(now);
                    if s.edge_down {
                        self.at(now + 1_000_000, Ev::Probe(PROBE_FAIL, 0));
                    } else {
                        let up = self.uplink_send(now, PROBE_UP_BYTES) - now as f64;
                        let xfer = s.rtt_ms * 1e3 + up + 64.0 * 8.0 / s.down_mbps;
                        self.at(now + (s.rtt_ms * 1e3 + xfer) as u64, Ev::Probe(PROBE_OK, up as u32));
                    }
                }
                self.at(now + trace::STEP_US, Ev::Tick);
            }
            Ev::Probe(kind, up_us) => {
                let t = self.edge_target;
                let obs = if kind == PROBE_FAIL {
                    Observation::ProbeFailed(t)
                } else {
                    // The probe measured the world as it was when it was sent; close enough.
                    let s = self.timeline.at(now);
                    let xfer = s.rtt_ms * 1e3 + f64::from(up_us) + 64.0 * 8.0 / s.down_mbps;
                    Observation::ProbeAnswered {
                        target: t,
                        rtt_us: (s.rtt_ms * 1e3) as u32,
                        up_bytes: PROBE_UP_BYTES as u32,
                        down_bytes: 64,
                        transfer_us: xfer as u32,
                        edge_queue_us: Some((s.edge_queue_ms * 1e3) as u32),
                    }
                };
                self.decider.observe(obs, now);
            }
            Ev::Send(i, t) => {
                // Cancelled while its form was made (answered by the other path): not sent,
                // as the agent's executor drops it.
                if self.offload_cancelled[i] {
                    return;
                }
                let form = self.form[i];
                // The time it took is what the device measured; its bytes are what it made.
                let Some((encode_us, up_bytes)) = self.shaped[i] else { return };
                let model = self.model_of(i);
                self.decider.observe(Observation::Shaped { model, form, up_bytes, encode_us: encode_us as u32 }, now);
                self.send_offload(i, TargetId(t), form, up_bytes, now);
            }
            Ev::Arrive(i) => {
                let r = self.reqs[i];
                let req = RequestInfo {
                    model: if r.image { self.image } else { self.digits },
                    up_bytes: r.up_bytes,
                    down_bytes: r.down_bytes,
                    deadline_us: Some(r.deadline_us),
                    shapeable: self.shaping && r.image,
                };
                let decision = self.decider.decide(&req, now);
                self.form[i] = decision.form();
                let (m, actions) = RequestMachine::start(decision, now, req.deadline_us);
                self.machines[i] = Some(m);
                self.perform(i, &actions, now, false);
            }
            Ev::LocalDone(i) => {
                // A run stopped part-way has already left the runner: its completion is void.
                if self.local_running.is_none_or(|(j, _, _)| j != i) {
                    return;
                }
                if let Some((_, t, started)) = self.local_running.take() {
                    let compute = clamp_u32(now.saturating_sub(started));
                    self.decider.observe(Observation::LocalFinished { target: t, compute_us: compute, ok: true }, now);
                }
                if !self.local_cancelled[i] {
                    self.feed(i, Event::LocalDone, now, false);
                }
                self.start_next_local(now);
            }
            Ev::Edge(i, kind) => {
                let Some((sent, watch)) = self.offload[i] else { return };
                let wanted = watch.is_wanted();
                if !wanted && now.saturating_sub(sent) > EDGE_TIMEOUT_US {
                    return; // the device stopped listening; `Ev::Expire` reports it
                }
                let (end, event) = match (kind, self.edge_reply[i]) {
                    (EDGE_OK, Some(EdgeOutcome::Answer { queue_us, compute_us, .. })) => {
                        let end = OffloadEnd::Answered {
                            down_bytes: self.reqs[i].down_bytes,
                            edge_queue_us: queue_us as u32,
                            edge_compute_us: compute_us as u32,
                        };
                        (end, Event::OffloadAnswered)
                    }
                    (_, Some(EdgeOutcome::Busy { queue_us, .. })) => {
                        (OffloadEnd::Busy { edge_queue_us: Some(queue_us as u32) }, Event::OffloadBusy)
                    }
                    _ => return,
                };
                self.offload_ended(i, end, now);
                if wanted {
                    self.feed(i, event, now, false);
                }
            }
            Ev::Expire(i) => self.offload_ended(i, OffloadEnd::Failed, now),
            Ev::Timer(i, t) => {
                if self.timer_at[i] == t {
                    self.feed(i, Event::Timer, now, true);
                }
            }
        }
    }
}

/// Runs one policy over a trace.
pub fn run(spec: &TraceSpec, timeline: &Timeline, policy: Box<dyn Policy>, hedge: bool) -> Result<Stats, super::DecideError> {
    run_with(spec, timeline, policy, RunOptions { hedge, shaping: false })
}

/// The simulator's decider config for a trace: [`SIM_CONFIG`], with hedging as asked and,
/// when shaping, the board profile's shaped forms of the image model offered to the edge
/// (priors: the profile's figures, as the agent's come from the manifest).
pub fn sim_config(spec: &TraceSpec, opts: RunOptions) -> Result<Config, super::DecideError> {
    let mut config = Config::from_toml(SIM_CONFIG)?;
    config.decide.hedge = opts.hedge;
    if opts.shaping {
        let forms = &spec.board.models.efficientnet_lite0.forms;
        config.forms = forms
            .iter()
            .take(MAX_FORMS)
            .map(|(name, f)| FormConfig {
                model: "efficientnet-lite0".to_owned(),
                name: name.clone(),
                up_bytes: f.up_bytes,
                encode_ms: f.encode_ms,
                edge_share: f.edge_share,
            })
            .collect();
        for t in &mut config.targets {
            if let TargetConfig::Edge(e) = t {
                e.forms = config.forms.iter().map(|f| f.name.clone()).collect();
            }
        }
        config.validate()?;
    }
    Ok(config)
}

/// Runs one policy over a trace with [`RunOptions`].
pub fn run_with(spec: &TraceSpec, timeline: &Timeline, policy: Box<dyn Policy>, opts: RunOptions) -> Result<Stats, super::DecideError> {
    let config = sim_config(spec, opts)?;
    let mut decider = Decider::with_policy(&config, policy)?;
    let name = decider.policy_name().to_owned()
        + if opts.hedge { "+hedge" } else { "" }
        + if opts.shaping { "+shaping" } else { "" };
    let image = decider.model_id("efficientnet-lite0").unwrap_or(ModelId(0));
    let digits = decider.model_id("digits").unwrap_or(ModelId(1));
    let edge_target = decider
        .targets()
        .iter()
        .find(|t| matches!(t.kind, TargetKind::Edge { .. }))
        .map_or(TargetId(3), |t| t.id);
    let reqs = world::requests(spec);
    let n = reqs.len();
    decider.observe(Observation::System(SystemState::default()), 0);
    let mut sim = Sim {
        timeline,
        reqs,
        decider,
        heap: BinaryHeap::new(),
        seq: 0,
        machines: vec![None; n],
        timer_at: vec![0; n],
        offload: vec![None; n],
        edge_reply: vec![None; n],
        offload_backlog_us: vec![0; n],
        local_queue: VecDeque::new(),
        uplink_free_at: 0.0,
        local_running: None,
        local_cancelled: vec![false; n],
        answers: vec![0; n],
        answered: Vec::with_capacity(n),
        failed: 0,
        oracle_edge: Vec::new(),
        wrong_path: 0,
        fallbacks: 0,
        probes: 0,
        image,
        digits,
        edge_target,
        throttle_c: spec.board.cpu.throttle_c,
        shaping: opts.shaping,
        form: vec![FormId::ORIGINAL; n],
        offload_cancelled: vec![false; n],
        shaped: vec![None; n],
        sent_by_form: vec![0; MAX_FORMS + 1],
    };
    sim.oracle_edge =
        sim.reqs.iter().map(|r| (world::oracle_us(r, timeline).1, world::choice_matters(r, timeline))).collect();
    for i in 0..n {
        let t = sim.reqs[i].at_us;
        sim.at(t, Ev::Arrive(i));
    }
    sim.at(0, Ev::Tick);
    // Bounded: ticks stop once every request is answered and past the trace's end.
    let end = u64::from(spec.duration_s) * 1_000_000;
    while let Some(Reverse((now, _, ev))) = sim.heap.pop() {
        if ev == Ev::Tick && now > end && sim.answers.iter().all(|&a| a > 0) {
            continue;
        }
        if now > end + 600_000_000 {
            break;
        }
        sim.step(now, ev);
    }
    let mut stats = summarize(&name, &sim.answered, f64::from(spec.duration_s));
    stats.requests = n;
    stats.answers = sim.answers.iter().filter(|&&a| a > 0).count();
    stats.duplicate_answers = sim.answers.iter().filter(|&&a| a > 1).count();
    stats.failed = sim.failed;
    stats.fallbacks = sim.fallbacks;
    stats.probes = sim.probes;
    stats.probe_bytes = (sim.probes as f64 * (PROBE_UP_BYTES + PROBE_DOWN_BYTES)) as u64;
    stats.wrong_path = sim.wrong_path;
    stats.sent_by_form = sim.sent_by_form;
    Ok(stats)
}

/// A trace is *mixed* when every static policy (always-local, always-offload, threshold) runs
/// at least this share of its requests on the wrong kind of path (by the oracle).
pub const MIXED_WRONG_SHARE: f64 = 0.2;

/// Whether the static policies' rows show a mixed trace (see [`MIXED_WRONG_SHARE`]).
pub fn is_mixed(statics: &[Stats]) -> bool {
    !statics.is_empty()
        && statics.iter().all(|s| s.wrong_path as f64 >= MIXED_WRONG_SHARE * s.requests.max(1) as f64)
}

/// Every row of a trace's table, in order: the oracle, adaptive, adaptive+hedge, then the
/// static policies always-local, always-offload and threshold (see [`STATIC_ROWS`]).
pub fn table(spec: &TraceSpec) -> Result<Vec<Stats>, super::DecideError> {
    use super::{policy_of, PolicyKind};
    let timeline = spec.timeline();
    let mut rows = vec![oracle(spec, &timeline)];
    for (kind, hedge) in [
        (PolicyKind::Adaptive, false),
        (PolicyKind::Adaptive, true),
        (PolicyKind::AlwaysLocal, false),
        (PolicyKind::AlwaysOffload, false),
        (PolicyKind::Threshold, false),
    ] {
        rows.push(run(spec, &timeline, policy_of(kind), hedge)?);
    }
    Ok(rows)
}

/// The per-request oracle is taken as valid on a trace (a bound, as issue 5's bar uses it)
/// when the hindsight reference that runs every request ([`reference::Admission::RunAll`])
/// made at most this share of them wait behind its own earlier choices ([`Stats::queued`]):
/// then nearly every request meets an idle runner and link, as the oracle assumes.
pub const ORACLE_VALID_QUEUED_SHARE: f64 = 0.01;

/// Whether the per-request oracle is valid on the trace `run_all` (the row of
/// [`reference`] under [`reference::Admission::RunAll`]) is of: see
/// [`ORACLE_VALID_QUEUED_SHARE`].
pub fn oracle_is_valid(run_all: &Stats) -> bool {
    run_all.queued as f64 <= ORACLE_VALID_QUEUED_SHARE * run_all.requests.max(1) as f64
}

/// Where the static policies' rows start in [`table`]'s output.
pub const STATIC_ROWS: usize = 3;

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
