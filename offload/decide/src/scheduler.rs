//! The per-request scheduler: a pure state machine that carries out one [`Decision`].
//!
//! Events in (the offload answered / failed / was refused, the local run finished, a timer
//! fired), actions out (start local, start offload, arm a timer, cancel a path, answer). No
//! I/O, no clock, no allocation: the async executor around it only performs the actions and
//! feeds back the events, so every fallback path is tested without a network.
//!
//! The invariant: whatever order events arrive in, a request gets exactly one
//! [`Action::Answer`], as long as every started path eventually reports back or the armed timer
//! fires (the timer alone suffices for the edge: it has a hard timeout).
//!
//! Deadlines are hard: a request with a deadline (and not best effort) is answered
//! [`AnswerKind::DeadlineExceeded`] at its [`Decision::answer_by_us`] (deadline + grace) if no
//! path has answered by then, and every path still running is cancelled. So no answer is ever
//! later than deadline + grace.

use super::policy::{Choice, Decision, Reason, Why};
use super::targets::TargetId;

/// What happened to a request in flight. Times are absolute, µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The edge answered with a result.
    OffloadAnswered,
    /// The edge refused: busy.
    OffloadBusy,
    /// The offload failed (transport error, edge error).
    OffloadFailed,
    /// The local run produced a result.
    LocalDone,
    /// The local run failed.
    LocalFailed,
    /// The timer armed by the last [`Action::SetTimer`] fired.
    Timer,
    /// The local run left the queue and holds the runner.
    LocalStarted,
    /// The local queue refused the run (full).
    LocalBusy,
    /// Nobody waits for the answer any more (the client went away): stop everything.
    Cancelled,
    /// A newer frame of the same stream arrived (freshest-frame): if this request has not
    /// started anywhere yet (its local run still queued, nothing sent), it is dropped.
    Superseded,
}

/// What kind of answer it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A result.
    Result,
    /// No path produced one (errors, nothing serves the model or is allowed).
    Failed,
    /// The local queue is full and no other path was allowed or available.
    Busy,
    /// Not answered by deadline + grace, or no path could be expected to be.
    DeadlineExceeded,
    /// Dropped for a newer frame of its stream before it started.
    Superseded,
    /// Cancelled by its client.
    Cancelled,
}

impl AnswerKind {
    /// As the API and logs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Result => "ok",
            AnswerKind::Failed => "failed",
            AnswerKind::Busy => "busy",
            AnswerKind::DeadlineExceeded => "deadline_exceeded",
            AnswerKind::Superseded => "superseded",
            AnswerKind::Cancelled => "cancelled",
        }
    }
}

/// Why a request did not run (only) where it was first sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The edge said busy.
    EdgeBusy,
    /// The offload failed.
    EdgeError,
    /// No answer within the edge's timeout.
    EdgeTimeout,
    /// The offload could no longer return before deadline minus the local time.
    DeadlineAtRisk,
}

/// Where the answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// A local variant.
    Local(TargetId),
    /// An edge.
    Edge(TargetId),
    /// Nowhere (no target serves the model).
    Nowhere,
}

/// The one answer a request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    /// Where the result came from (for a failure: the last path tried).
    pub ran: Ran,
    /// Whether there is a result (`kind == AnswerKind::Result`).
    pub ok: bool,
    /// What kind of answer.
    pub kind: AnswerKind,
    /// Why it fell back, if it did.
    pub fallback: Option<Fallback>,
    /// Whether both paths ran at once (hedge or at-risk fallback).
    pub raced: bool,
    /// From the decision to the answer, µs.
    pub latency_us: u64,
    /// The decision's reason.
    pub reason: Reason,
}

/// Something for the executor to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Queue the request on the local runner with this target.
    StartLocal(TargetId),
    /// Send the request to this edge.
    StartOffload(TargetId),
    /// (Re-)arm the request's single timer for this absolute time, µs.
    SetTimer(u64),
    /// Drop the local run (if still queued) and its result.
    CancelLocal,
    /// Stop waiting for the edge's answer.
    CancelOffload,
    /// Deliver this answer. Happens exactly once.
    Answer(Answer),
}

/// Why the executor stops waiting for an offload that `actions` cancel: the edge's own timeout
/// (a timer fired and the request was not given up on as a whole), or it was overtaken — by
/// the other path, the hard deadline, the client going away — and its answer may still come
/// and teach the estimators.
pub fn offload_stop_cause(actions: &[Action], from_timer: bool) -> crate::outcome::StopCause {
    let given_up = actions.iter().any(|a| matches!(a, Action::Answer(x) if x.kind != AnswerKind::Failed && x.kind != AnswerKind::Result));
    if from_timer && !given_up {
        crate::outcome::StopCause::TimedOut
    } else {
        crate::outcome::StopCause::Overtaken
    }
}

/// The actions of one step (at most four).
pub type Actions = heapless::Vec<Action, 4>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Idle,
    /// Local only: waiting for the runner (the edge is running as soon as it is sent).
    Queued(TargetId),
    Running(TargetId),
    Failed(TargetId),
}

/// One request's state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestMachine {
    started_us: u64,
    decision: Decision,
    edge: Path,
    local: Path,
    answered: bool,
    fallback: Option<Fallback>,
    raced: bool,
    risk_at: Option<u64>,
    timeout_at: Option<u64>,
    /// Deadline + grace, absolute µs.
    hard_at: Option<u64>,
    /// The time of the last [`Action::SetTimer`] not yet fired.
    armed: Option<u64>,
}

fn push(actions: &mut Actions, a: Action) {
    // Capacity 4 is enough for every step below (at most three actions); never silently lose
    // an answer: it is always pushed first into a fresh buffer when it is produced.
    let _ = actions.push(a);
}

impl RequestMachine {
    /// Starts carrying out `decision` at `now_us`; `deadline_us` is relative.
    pub fn start(decision: Decision, now_us: u64, deadline_us: Option<u32>) -> (RequestMachine, Actions) {
        let mut m = RequestMachine {
            started_us: now_us,
            decision,
            edge: Path::Idle,
            local: Path::Idle,
            answered: false,
            fallback: None,
            raced: false,
            risk_at: None,
            timeout_at: None,
            hard_at: decision.answer_by_us.map(|by| now_us.saturating_add(by)),
            armed: None,
        };
        let mut out = Actions::new();
        match decision.choice {
            Choice::Local(l) => {
                m.local = Path::Queued(l);
                push(&mut out, Action::StartLocal(l));
                m.arm(&mut out);
            }
            Choice::Offload(e) => {
                m.edge = Path::Running(e);
                m.timeout_at = Some(now_us.saturating_add(decision.edge_timeout_us.max(1)));
                // The local run starts when the edge can no longer answer before the deadline
                // minus the local time (its planning quantile). When local cannot make the
                // deadline at that quantile, it races the edge at once only if the local
                // runner is idle (the race then costs no other request) and local could answer
                // first (its mean is below the edge's planning quantile); otherwise it starts
                // once the edge is overdue against its own planning quantile — a race local
                // cannot win only takes the board from the next requests.
                if let (Some(_), Some(d)) = (decision.fallback, deadline_us) {
                    let d = u64::from(d);
                    let after = if d > decision.fallback_local_us {
                        d - decision.fallback_local_us
                    } else if decision.local_idle && decision.local_may_win {
                        0
                    } else {
                        decision.reason.chosen.map_or(0, |p| (f64::from(p.quantile_ms.max(0.0)) * 1e3) as u64)
                    };
                    m.risk_at = Some(now_us.saturating_add(after));
                }
                push(&mut out, Action::StartOffload(e));
                m.arm(&mut out);
            }
            Choice::Hedge { edge, local } => {
                m.edge = Path::Running(edge);
                m.local = Path::Queued(local);
                m.raced = true;
                m.timeout_at = Some(now_us.saturating_add(decision.edge_timeout_us.max(1)));
                push(&mut out, Action::StartOffload(edge));
                push(&mut out, Action::StartLocal(local));
                m.arm(&mut out);
            }
            Choice::Nowhere => {
                let kind = match decision.reason.why {
                    Why::LocalQueueFull => AnswerKind::Busy,
                    Why::DeadlineUnreachable => AnswerKind::DeadlineExceeded,
                    _ => AnswerKind::Failed,
                };
                let a = m.answer_as(Ran::Nowhere, kind, now_us);
                push(&mut out, a);
            }
        }
        (m, out)
    }

    /// Whether the answer has been given.
    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// The decision being carried out.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    fn next_timer(&self) -> Option<u64> {
        [self.risk_at, self.timeout_at, self.hard_at].into_iter().flatten().min()
    }

    /// Arms the timer for the next instant that matters, unless it is armed for it already.
    fn arm(&mut self, out: &mut Actions) {
        if self.answered {
            return;
        }
        if let Some(t) = self.next_timer() {
            if self.armed != Some(t) {
                self.armed = Some(t);
                push(out, Action::SetTimer(t));
            }
        }
    }

    fn local_active(&self) -> Option<TargetId> {
        match self.local {
            Path::Queued(l) | Path::Running(l) => Some(l),
            _ => None,
        }
    }

    fn answer(&mut self, ran: Ran, ok: bool, now_us: u64) -> Action {
        self.answer_as(ran, if ok { AnswerKind::Result } else { AnswerKind::Failed }, now_us)
    }

    fn answer_as(&mut self, ran: Ran, kind: AnswerKind, now_us: u64) -> Action {
        self.answered = true;
        self.risk_at = None;
        self.timeout_at = None;
        self.hard_at = None;
        Action::Answer(Answer {
            ran,
            ok: kind == AnswerKind::Result,
            kind,
            fallback: self.fallback,
            raced: self.raced,
            latency_us: now_us.saturating_sub(self.started_us),
            reason: self.decision.reason,
        })
    }

    /// The edge path is over without a result: fall back, keep waiting for local, or give up.
    fn edge_gone(&mut self, e: TargetId, cause: Fallback, now_us: u64, out: &mut Actions) {
        self.edge = Path::Failed(e);
        self.timeout_at = None;
        self.risk_at = None;
        if self.fallback.is_none() {
            self.fallback = Some(cause);
        }
        match (self.local, self.decision.fallback) {
            (Path::Queued(_) | Path::Running(_), _) => {}
            (Path::Idle, Some(l)) => {
                self.local = Path::Queued(l);
                push(out, Action::StartLocal(l));
            }
            _ => {
                let a = self.answer(Ran::Edge(e), false, now_us);
                push(out, a);
            }
        }
    }

    /// Answers `kind` now and cancels every path still going.
    fn stop_all(&mut self, kind: AnswerKind, now_us: u64, out: &mut Actions) {
        let edge = if let Path::Running(e) = self.edge { Some(e) } else { None };
        let local = self.local_active();
        let ran = match (local, edge, self.local, self.edge) {
            (Some(l), _, _, _) => Ran::Local(l),
            (None, Some(e), _, _) => Ran::Edge(e),
            (None, None, Path::Failed(l), _) => Ran::Local(l),
            (None, None, _, Path::Failed(e)) => Ran::Edge(e),
            _ => Ran::Nowhere,
        };
        let a = self.answer_as(ran, kind, now_us);
        push(out, a);
        if local.is_some() {
            push(out, Action::CancelLocal);
        }
        if edge.is_some() {
            push(out, Action::CancelOffload);
        }
    }

    /// Feeds one event at `now_us`; returns what to do. Events for a path that is not running
    /// (late, duplicated, after the answer) are ignored.
    pub fn handle(&mut self, event: Event, now_us: u64) -> Actions {
        let mut out = Actions::new();
        if self.answered {
            return out;
        }
        if event == Event::Timer {
            self.armed = None;
        }
        self.step(event, now_us, &mut out);
        self.arm(&mut out);
        out
    }

    fn step(&mut self, event: Event, now_us: u64, out: &mut Actions) {
        if event == Event::Timer && self.hard_at.is_some_and(|t| now_us >= t) {
            self.stop_all(AnswerKind::DeadlineExceeded, now_us, out);
            return;
        }
        match event {
            Event::OffloadAnswered => {
                if let Path::Running(e) = self.edge {
                    let a = self.answer(Ran::Edge(e), true, now_us);
                    push(out, a);
                    if self.local_active().is_some() {
                        push(out, Action::CancelLocal);
                    }
                }
            }
            Event::OffloadBusy | Event::OffloadFailed => {
                if let Path::Running(e) = self.edge {
                    let cause = if event == Event::OffloadBusy { Fallback::EdgeBusy } else { Fallback::EdgeError };
                    self.edge_gone(e, cause, now_us, out);
                }
            }
            Event::LocalDone => {
                if let Some(l) = self.local_active() {
                    let a = self.answer(Ran::Local(l), true, now_us);
                    push(out, a);
                    if matches!(self.edge, Path::Running(_)) {
                        push(out, Action::CancelOffload);
                    }
                }
            }
            Event::LocalFailed | Event::LocalBusy => {
                if let Some(l) = self.local_active() {
                    self.local = Path::Failed(l);
                    if !matches!(self.edge, Path::Running(_)) {
                        let kind = if event == Event::LocalBusy { AnswerKind::Busy } else { AnswerKind::Failed };
                        let a = self.answer_as(Ran::Local(l), kind, now_us);
                        push(out, a);
                    }
                }
            }
            Event::LocalStarted => {
                if let Path::Queued(l) = self.local {
                    self.local = Path::Running(l);
                }
            }
            Event::Cancelled => self.stop_all(AnswerKind::Cancelled, now_us, out),
            Event::Superseded => {
                if matches!(self.local, Path::Queued(_)) && !matches!(self.edge, Path::Running(_)) {
                    self.stop_all(AnswerKind::Superseded, now_us, out);
                }
            }
            Event::Timer => {
                if let Path::Running(e) = self.edge {
                    if self.timeout_at.is_some_and(|t| now_us >= t) {
                        push(out, Action::CancelOffload);
                        self.edge_gone(e, Fallback::EdgeTimeout, now_us, out);
                    } else if self.risk_at.is_some_and(|t| now_us >= t) {
                        self.risk_at = None;
                        if let (Path::Idle, Some(l)) = (self.local, self.decision.fallback) {
                            // Keep the offload running: whichever answers first wins.
                            self.local = Path::Queued(l);
                            self.raced = true;
                            self.fallback = Some(Fallback::DeadlineAtRisk);
                            push(out, Action::StartLocal(l));
                        }
                    }
                }
            }
        }
    }
}
