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

use super::policy::{Choice, Decision, Reason};
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
    /// Whether there is a result.
    pub ok: bool,
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

/// The actions of one step (at most four).
pub type Actions = heapless::Vec<Action, 4>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Idle,
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
        };
        let mut out = Actions::new();
        match decision.choice {
            Choice::Local(l) => {
                m.local = Path::Running(l);
                push(&mut out, Action::StartLocal(l));
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
                if let Some(t) = m.next_timer() {
                    push(&mut out, Action::SetTimer(t));
                }
            }
            Choice::Hedge { edge, local } => {
                m.edge = Path::Running(edge);
                m.local = Path::Running(local);
                m.raced = true;
                m.timeout_at = Some(now_us.saturating_add(decision.edge_timeout_us.max(1)));
                push(&mut out, Action::StartOffload(edge));
                push(&mut out, Action::StartLocal(local));
                if let Some(t) = m.next_timer() {
                    push(&mut out, Action::SetTimer(t));
                }
            }
            Choice::Nowhere => {
                let a = m.answer(Ran::Nowhere, false, now_us);
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
        match (self.risk_at, self.timeout_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn answer(&mut self, ran: Ran, ok: bool, now_us: u64) -> Action {
        self.answered = true;
        self.risk_at = None;
        self.timeout_at = None;
        Action::Answer(Answer {
            ran,
            ok,
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
            (Path::Running(_), _) => {}
            (Path::Idle, Some(l)) => {
                self.local = Path::Running(l);
                push(out, Action::StartLocal(l));
            }
            _ => {
                let a = self.answer(Ran::Edge(e), false, now_us);
                push(out, a);
            }
        }
    }

    /// Feeds one event at `now_us`; returns what to do. Events for a path that is not running
    /// (late, duplicated, after the answer) are ignored.
    pub fn handle(&mut self, event: Event, now_us: u64) -> Actions {
        let mut out = Actions::new();
        if self.answered {
            return out;
        }
        match event {
            Event::OffloadAnswered => {
                if let Path::Running(e) = self.edge {
                    let a = self.answer(Ran::Edge(e), true, now_us);
                    push(&mut out, a);
                    if matches!(self.local, Path::Running(_)) {
                        push(&mut out, Action::CancelLocal);
                    }
                }
            }
            Event::OffloadBusy | Event::OffloadFailed => {
                if let Path::Running(e) = self.edge {
                    let cause = if event == Event::OffloadBusy { Fallback::EdgeBusy } else { Fallback::EdgeError };
                    self.edge_gone(e, cause, now_us, &mut out);
                }
            }
            Event::LocalDone => {
                if let Path::Running(l) = self.local {
                    let a = self.answer(Ran::Local(l), true, now_us);
                    push(&mut out, a);
                    if matches!(self.edge, Path::Running(_)) {
                        push(&mut out, Action::CancelOffload);
                    }
                }
            }
            Event::LocalFailed => {
                if let Path::Running(l) = self.local {
                    self.local = Path::Failed(l);
                    if !matches!(self.edge, Path::Running(_)) {
                        let a = self.answer(Ran::Local(l), false, now_us);
                        push(&mut out, a);
                    }
                }
            }
            Event::Timer => {
                if let Path::Running(e) = self.edge {
                    if self.timeout_at.is_some_and(|t| now_us >= t) {
                        push(&mut out, Action::CancelOffload);
                        self.edge_gone(e, Fallback::EdgeTimeout, now_us, &mut out);
                    } else if self.risk_at.is_some_and(|t| now_us >= t) {
                        self.risk_at = None;
                        if let (Path::Idle, Some(l)) = (self.local, self.decision.fallback) {
                            // Keep the offload running: whichever answers first wins.
                            self.local = Path::Running(l);
                            self.raced = true;
                            self.fallback = Some(Fallback::DeadlineAtRisk);
                            push(&mut out, Action::StartLocal(l));
                        }
                    }
                    if !self.answered {
                        if let Some(t) = self.next_timer() {
                            push(&mut out, Action::SetTimer(t));
                        }
                    }
                }
            }
        }
        out
    }
}
