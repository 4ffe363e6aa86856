//! The one mapping from how an offload went to what the estimators learn from it.
//!
//! The agent's executor and the simulator both carry offloads out; both feed the decider
//! through an [`OffloadWatch`], so the simulator judges the decision by the very rules the
//! agent lives by. The watch is plain data: it says what to observe, its owner feeds the
//! observation to the [`Decider`](crate::Decider) at its own clock.
//!
//! One offload, as the device sees it:
//! - sent ([`OffloadWatch::sent`]); then, in either order,
//! - the request may stop waiting for it ([`OffloadWatch::stop_waiting`]): its hard timeout
//!   passed (a failure, counted once, right then), or the other path answered first (it is
//!   *abandoned*: the wait so far says the link is at least this slow);
//! - its exchange ends ([`OffloadWatch::ended`]): answered, refused as busy, or failed.
//!   Ending while still wanted is an answer, a busy or a failure; ending after it was
//!   abandoned is a late answer (a complete measurement) or an expiry (a failure); ending
//!   after its timeout teaches nothing more.
//!
//! Every offload yields at most one closing observation, whatever the order of the two.

use super::estimators::Observation;
use super::targets::{FormId, ModelId, TargetId};

/// Why the request stopped waiting for an offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The offload's hard timeout passed with no answer: the edge path failed.
    TimedOut,
    /// The other path answered first: the offload is abandoned, its answer may still come.
    Overtaken,
}

/// How an offload's exchange with the edge ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffloadEnd {
    /// The edge answered with a result.
    Answered {
        /// Bytes received.
        down_bytes: u32,
        /// Queue wait the edge reported, µs.
        edge_queue_us: u32,
        /// Compute time the edge reported, µs.
        edge_compute_us: u32,
    },
    /// The edge refused it as busy.
    Busy {
        /// Queue wait the edge reported with the refusal, if any, µs.
        edge_queue_us: Option<u32>,
    },
    /// A transport error, a timeout of the exchange itself, or an error answer.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Abandoned,
    Closed,
}

/// One offload from its send to its closing observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffloadWatch {
    target: TargetId,
    model: ModelId,
    form: FormId,
    up_bytes: u32,
    /// Bytes expected back, for the censored samples (no answer was seen).
    down_bytes: u32,
    state: State,
}

impl OffloadWatch {
    /// An offload of `model` to `target`, its input in `form`: `up_bytes` sent, `down_bytes`
    /// expected back. Returns the watch and the observation of the send.
    pub fn sent(target: TargetId, model: ModelId, form: FormId, up_bytes: u32, down_bytes: u32) -> (Self, Observation) {
        let watch = Self { target, model, form, up_bytes, down_bytes, state: State::Waiting };
        (watch, Observation::OffloadSent { target, up_bytes })
    }

    /// There is no link to `target` at all (not configured, not connected): the offload fails
    /// at once, without a send.
    pub fn unreachable(target: TargetId) -> Observation {
        Observation::OffloadFailed(target)
    }

    /// The edge this offload went to.
    pub fn target(&self) -> TargetId {
        self.target
    }

    /// The request stops waiting, `waited_us` after the send (as the device reports times:
    /// without the predicted wait behind its own earlier uploads). `None` once the offload
    /// has already been closed or abandoned.
    pub fn stop_waiting(&mut self, cause: StopCause, waited_us: u32) -> Option<Observation> {
        if self.state != State::Waiting {
            return None;
        }
        match cause {
            StopCause::TimedOut => {
                self.state = State::Closed;
                Some(Observation::OffloadFailed(self.target))
            }
            StopCause::Overtaken => {
                self.state = State::Abandoned;
                Some(Observation::OffloadAbandoned {
                    target: self.target,
                    model: self.model,
                    up_bytes: self.up_bytes,
                    down_bytes: self.down_bytes,
                    waited_us,
                })
            }
        }
    }

    /// The exchange ended `elapsed_us` after the send (reported as in
    /// [`stop_waiting`](Self::stop_waiting)). `None` when there is nothing left to learn (the
    /// offload already closed: its timeout passed, or it ended before).
    pub fn ended(&mut self, end: OffloadEnd, elapsed_us: u32) -> Option<Observation> {
        let (target, model, form, up_bytes) = (self.target, self.model, self.form, self.up_bytes);
        let obs = match (self.state, end) {
            (State::Closed, _) => return None,
            (State::Waiting, OffloadEnd::Answered { down_bytes, edge_queue_us, edge_compute_us }) => {
                Observation::OffloadAnswered { target, model, form, up_bytes, down_bytes, total_us: elapsed_us, edge_queue_us, edge_compute_us }
            }
            (State::Waiting, OffloadEnd::Busy { edge_queue_us }) => Observation::OffloadBusy { target, edge_queue_us },
            (State::Waiting, OffloadEnd::Failed) => Observation::OffloadFailed(target),
            (State::Abandoned, OffloadEnd::Answered { down_bytes, edge_queue_us, edge_compute_us }) => {
                Observation::OffloadLate { target, model, form, up_bytes, down_bytes, total_us: elapsed_us, edge_queue_us, edge_compute_us }
            }
            (State::Abandoned, OffloadEnd::Busy { .. } | OffloadEnd::Failed) => {
                Observation::OffloadExpired { target, model, up_bytes, down_bytes: self.down_bytes, waited_us: elapsed_us }
            }
        };
        self.state = State::Closed;
        Some(obs)
    }

    /// Whether the request still waits for this offload's answer.
    pub fn is_wanted(&self) -> bool {
        self.state == State::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TargetId = TargetId(1);
    const M: ModelId = ModelId(0);
    const ANSWER: OffloadEnd = OffloadEnd::Answered { down_bytes: 300, edge_queue_us: 5, edge_compute_us: 7 };

    fn watch() -> OffloadWatch {
        let (w, sent) = OffloadWatch::sent(T, M, FormId::ORIGINAL, 1000, 512);
        assert_eq!(sent, Observation::OffloadSent { target: T, up_bytes: 1000 });
        w
    }

    #[test]
    fn an_answer_while_wanted_is_an_answer_and_closes_the_offload() {
        let mut w = watch();
        let obs = w.ended(ANSWER, 40_000);
        assert!(matches!(obs, Some(Observation::OffloadAnswered { total_us: 40_000, down_bytes: 300, .. })));
        assert_eq!(w.stop_waiting(StopCause::Overtaken, 41_000), None);
        assert_eq!(w.ended(OffloadEnd::Failed, 50_000), None);
    }

    #[test]
    fn a_timeout_is_one_failure_and_whatever_comes_after_teaches_nothing() {
        let mut w = watch();
        assert_eq!(w.stop_waiting(StopCause::TimedOut, 1_000_000), Some(Observation::OffloadFailed(T)));
        assert_eq!(w.ended(OffloadEnd::Failed, 1_000_100), None);
        assert_eq!(w.ended(ANSWER, 1_000_200), None);
    }

    #[test]
    fn an_overtaken_offload_is_abandoned_then_late_or_expired() {
        let mut w = watch();
        let obs = w.stop_waiting(StopCause::Overtaken, 30_000);
        assert!(matches!(obs, Some(Observation::OffloadAbandoned { waited_us: 30_000, down_bytes: 512, .. })));
        assert!(!w.is_wanted());
        assert!(matches!(w.ended(ANSWER, 90_000), Some(Observation::OffloadLate { total_us: 90_000, .. })));

        let mut w = watch();
        w.stop_waiting(StopCause::Overtaken, 30_000);
        let obs = w.ended(OffloadEnd::Busy { edge_queue_us: Some(9) }, 60_000);
        assert!(matches!(obs, Some(Observation::OffloadExpired { waited_us: 60_000, down_bytes: 512, .. })));
    }

    #[test]
    fn busy_and_failure_while_wanted_are_reported_as_such() {
        let mut w = watch();
        assert_eq!(w.ended(OffloadEnd::Busy { edge_queue_us: None }, 10), Some(Observation::OffloadBusy { target: T, edge_queue_us: None }));
        let mut w = watch();
        assert_eq!(w.ended(OffloadEnd::Failed, 10), Some(Observation::OffloadFailed(T)));
    }
}
