//! Admission: what a request allows (its [`Constraints`]) and what the board can still take.
//! Before the policy chooses, the candidates are cut down to the paths the request allows
//! (`local-only`: the data never leaves the board; `edge-only`: no local run) and the local
//! runner can still queue ([`crate::queue::is_full`]); after, a request that no remaining
//! path can answer by its deadline plus the grace is shed at once instead of queueing.
//! The agent and the simulator both decide through here (via [`crate::Decider`]).

use super::config::Mode;
use super::cost::Candidates;

/// Where a request may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Wherever is best (the default).
    #[default]
    Any,
    /// Only on this board: no edge, no hedge, no fallback to an edge.
    LocalOnly,
    /// Only on an edge: no local run, no local fallback.
    EdgeOnly,
}

impl Placement {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Any => "any",
            Placement::LocalOnly => "local-only",
            Placement::EdgeOnly => "edge-only",
        }
    }

    /// From the API's spelling.
    pub fn parse(s: &str) -> Option<Placement> {
        match s {
            "any" => Some(Placement::Any),
            "local-only" => Some(Placement::LocalOnly),
            "edge-only" => Some(Placement::EdgeOnly),
            _ => None,
        }
    }

    /// Whether a path of this kind is allowed.
    pub fn allows(self, local: bool) -> bool {
        match self {
            Placement::Any => true,
            Placement::LocalOnly => local,
            Placement::EdgeOnly => !local,
        }
    }
}

/// What one request asks of the decision, beyond its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Constraints {
    /// Where it may run.
    pub placement: Placement,
    /// The cost to minimise; `None`: the configured `[decide] mode`.
    pub mode: Option<Mode>,
    /// Never answered `deadline_exceeded`: no shedding, no hard deadline; it runs to the end.
    pub best_effort: bool,
}

/// The candidates a request may use now: those its placement allows, and no local one when the
/// local queue is full.
pub fn admit(cands: &Candidates, c: &Constraints, local_full: bool) -> Candidates {
    let mut out = Candidates::empty();
    for p in cands.as_slice() {
        if c.placement.allows(p.local) && !(p.local && local_full) {
            out.push(*p);
        }
    }
    out
}

/// Whether no candidate can answer within `limit_us` (deadline + grace) even by its expected
/// time: answering "deadline exceeded" now beats queueing a run that only delays others.
pub fn unreachable(cands: &Candidates, limit_us: u64) -> bool {
    let limit_ms = limit_us as f64 / 1e3;
    !cands.as_slice().is_empty()
        && cands
            .as_slice()
            .iter()
            .all(|p| f64::from(p.mean_ms) > limit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::PathEstimate;

    fn cands() -> Candidates {
        let mut c = Candidates::empty();
        c.push(PathEstimate {
            target: 0,
            local: true,
            mean_ms: 80.0,
            ..PathEstimate::default()
        });
        c.push(PathEstimate {
            target: 1,
            local: false,
            mean_ms: 30.0,
            ..PathEstimate::default()
        });
        c
    }

    #[test]
    fn placement_and_a_full_queue_remove_the_paths_they_forbid() {
        let all = Constraints::default();
        let local_only = Constraints {
            placement: Placement::LocalOnly,
            ..all
        };
        let edge_only = Constraints {
            placement: Placement::EdgeOnly,
            ..all
        };
        let ids = |c: Candidates| c.as_slice().iter().map(|p| p.target).collect::<Vec<_>>();
        assert_eq!(ids(admit(&cands(), &all, false)), [0, 1]);
        assert_eq!(ids(admit(&cands(), &local_only, false)), [0]);
        assert_eq!(ids(admit(&cands(), &edge_only, false)), [1]);
        assert_eq!(ids(admit(&cands(), &all, true)), [1]);
        assert!(ids(admit(&cands(), &local_only, true)).is_empty());
    }

    #[test]
    fn a_request_is_unreachable_only_when_every_path_expects_to_miss() {
        assert!(!unreachable(&cands(), 40_000));
        assert!(unreachable(&cands(), 29_000));
        assert!(!unreachable(&Candidates::empty(), 0));
        assert_eq!(
            Placement::parse("local-only").map(Placement::as_str),
            Some("local-only")
        );
        assert_eq!(Placement::parse("elsewhere"), None);
    }
}
