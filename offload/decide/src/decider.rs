//! The decider: estimators + cost model + policy + thermal governor behind one call,
//! [`Decider::decide`], that neither blocks nor allocates.

use super::adaptive::Adaptive;
use super::config::{Config, DecideConfig, EnergyConfig, PolicyKind};
use super::admission::{self, Constraints};
use super::cost::{self, least, Candidates, RequestInfo};
use super::queue;
use super::error::DecideError;
use super::estimators::{Estimators, Observation};
use super::fixed::{AlwaysLocal, AlwaysOffload};
use super::policy::{Choice, Context, Decision, Policy, Reason, Why};
use super::probe::ProbePlan;
use super::targets::{ModelId, TargetId, TargetKind, Targets};
use super::thermal::ThermalGovernor;
use super::threshold::Threshold;

/// A policy by kind.
pub fn policy_of(kind: PolicyKind) -> Box<dyn Policy> {
    match kind {
        PolicyKind::Adaptive => Box::new(Adaptive::new()),
        PolicyKind::AlwaysLocal => Box::new(AlwaysLocal),
        PolicyKind::AlwaysOffload => Box::new(AlwaysOffload),
        PolicyKind::Threshold => Box::new(Threshold),
    }
}

/// Everything the decision needs, owned by one task of the agent.
pub struct Decider {
    targets: Targets,
    est: Estimators,
    policy: Box<dyn Policy>,
    governor: ThermalGovernor,
    config: DecideConfig,
    energy: EnergyConfig,
    /// The latest request: what probing an unused edge could gain is judged for requests like it.
    last_request: Option<RequestInfo>,
}

impl std::fmt::Debug for Decider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decider").field("policy", &self.policy.name()).field("targets", &self.targets).finish()
    }
}

impl Decider {
    /// With the policy the config names.
    pub fn new(config: &Config) -> Result<Decider, DecideError> {
        Decider::with_policy(config, policy_of(config.decide.policy))
    }

    /// With a given policy (a custom one, or a baseline for comparison).
    pub fn with_policy(config: &Config, policy: Box<dyn Policy>) -> Result<Decider, DecideError> {
        config.validate()?;
        let targets = Targets::from_config(config)?;
        let est = Estimators::new(&targets, &config.decide);
        Ok(Decider {
            targets,
            est,
            policy,
            governor: ThermalGovernor::new(&config.thermal),
            config: config.decide.clone(),
            energy: config.energy.clone(),
            last_request: None,
        })
    }

    /// The policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// The estimators (read-only).
    pub fn estimators(&self) -> &Estimators {
        &self.est
    }

    /// `[decide]`.
    pub fn config(&self) -> &DecideConfig {
        &self.config
    }

    /// The thermal governor.
    pub fn governor(&self) -> &ThermalGovernor {
        &self.governor
    }

    /// A model's id, for [`RequestInfo::model`].
    pub fn model_id(&self, name: &str) -> Option<ModelId> {
        self.targets.model_id(name)
    }

    /// Feeds one measurement made at `now_us`.
    pub fn observe(&mut self, obs: Observation, now_us: u64) {
        if let Observation::System(s) = obs {
            self.governor.update(s.sanitized().temp_c, now_us);
        }
        self.est.observe(obs, now_us);
    }

    /// An edge whose path has gone unused for its probe interval ([`Self::probe_plan`]; and,
    /// if it is down, whose backoff has passed) and should be probed now. The caller sends a
    /// probe of the plan's `bytes` and reports `ProbeSent` / `ProbeAnswered`.
    pub fn probe_due(&self, now_us: u64) -> Option<TargetId> {
        self.est.probe_due(&self.targets, now_us, self.last_request.as_ref(), &self.config)
    }

    /// How often `target` is probed while unused, how large its probes are, and what that
    /// costs (bytes/s, share of the uplink): more often the more a recovery of the edge would
    /// gain requests like the latest, never more than `probe_max_share` of the uplink.
    pub fn probe_plan(&self, target: TargetId, now_us: u64) -> ProbePlan {
        self.est.probe_plan(&self.targets, target, now_us, self.last_request.as_ref(), &self.config)
    }

    /// Decides where one request runs, with no constraints beyond its deadline.
    pub fn decide(&mut self, req: &RequestInfo, now_us: u64) -> Decision {
        self.decide_with(req, &Constraints::default(), now_us)
    }

    /// Decides where one request runs within what it allows ([`Constraints`]) and what the
    /// local queue can take ([`admission`]). No allocation, no lock, no I/O.
    pub fn decide_with(&mut self, req: &RequestInfo, constraints: &Constraints, now_us: u64) -> Decision {
        self.est.on_request(now_us);
        self.est.note_recovery_gain(&self.targets, req, now_us);
        self.last_request = Some(*req);
        let all = cost::predict(&self.targets, &self.est, &self.config, &self.energy, req, now_us);
        let q = &self.est.local_queue;
        let local_full = queue::is_full(usize::from(q.waiting), q.running.is_some(), self.config.local_queue_max);
        let cands = admission::admit(&all, constraints, local_full);
        let answer_by_us = match req.deadline_us {
            Some(d) if !constraints.best_effort => Some(u64::from(d) + u64::from(self.config.deadline_grace_ms) * 1000),
            _ => None,
        };
        let refused = if cands.as_slice().is_empty() && !all.as_slice().is_empty() {
            let allowed = all.as_slice().iter().any(|p| constraints.placement.allows(p.local));
            Some(if allowed && local_full { Why::LocalQueueFull } else { Why::NotAllowed })
        } else if answer_by_us.is_some_and(|by| admission::unreachable(&cands, by)) {
            Some(Why::DeadlineUnreachable)
        } else {
            None
        };
        if let Some(why) = refused {
            return self.refusal(why, &cands, &all, req);
        }
        if let Some(l) = cands.best_local() {
            let (compute, _) = self.est.local_compute_us(l.id());
            self.est.on_local_demand(compute);
        }
        let ctx = Context {
            now_us,
            request: req,
            candidates: &cands,
            estimators: &self.est,
            targets: &self.targets,
            config: &self.config,
            mode: constraints.mode.unwrap_or(self.config.mode),
            local_cost_factor: self.governor.local_cost_factor(),
        };
        let (mut choice, mut why) = self.policy.choose(&ctx);

        // The policy may name a path that is not available now: take the best one that is.
        let is = |id: TargetId, local: bool| cands.get(id).is_some_and(|p| p.local == local);
        let valid = match choice {
            Choice::Local(l) => is(l, true),
            Choice::Offload(e) => is(e, false),
            Choice::Hedge { edge, local } => is(edge, false) && is(local, true),
            Choice::Nowhere => cands.as_slice().is_empty(),
        };
        if !valid {
            why = Why::Unavailable;
            choice = match least(cands.as_slice().iter(), |p| p.mean_ms) {
                Some(p) if p.local => Choice::Local(p.id()),
                Some(p) => Choice::Offload(p.id()),
                None => {
                    why = Why::NoTarget;
                    Choice::Nowhere
                }
            };
        }

        let best_local = cands.best_local().copied();
        let chosen = match choice {
            Choice::Local(id) | Choice::Offload(id) | Choice::Hedge { edge: id, .. } => cands.get(id).copied(),
            Choice::Nowhere => None,
        };
        let fallback = match choice {
            Choice::Hedge { local, .. } => cands.get(local).copied(),
            _ => best_local,
        };
        let edge_timeout_us = match choice {
            Choice::Offload(id) | Choice::Hedge { edge: id, .. } => match self.targets.get(id).map(|t| t.kind) {
                Some(TargetKind::Edge { timeout_us, .. }) => timeout_us,
                _ => u64::from(crate::config::DEFAULT_EDGE_TIMEOUT_MS) * 1000,
            },
            _ => 0,
        };
        Decision {
            choice,
            fallback: fallback.map(|p| p.id()),
            fallback_local_us: fallback.map_or(0, |p| (f64::from(p.quantile_ms) * 1e3) as u64),
            local_idle: self.est.local_queue.running.is_none() && self.est.local_queue.waiting == 0,
            local_may_win: match (fallback, chosen) {
                (Some(l), Some(e)) if !e.local => l.mean_ms < e.quantile_ms,
                _ => false,
            },
            edge_timeout_us,
            answer_by_us,
            reason: Reason {
                why,
                chosen,
                best_local,
                best_edge: cands.best_edge().copied(),
                deadline_ms: req.deadline_us.map(|d| d as f32 / 1e3),
                thermal: self.governor.output() as f32,
            },
        }
    }

    /// A decision to answer at once without running anything, with the predictions that
    /// showed it (the admitted ones, or all of them when none was admitted).
    fn refusal(&self, why: Why, cands: &Candidates, all: &Candidates, req: &RequestInfo) -> Decision {
        let shown = if cands.as_slice().is_empty() { all } else { cands };
        Decision {
            choice: Choice::Nowhere,
            fallback: None,
            fallback_local_us: 0,
            local_idle: false,
            local_may_win: false,
            edge_timeout_us: 0,
            answer_by_us: None,
            reason: Reason {
                why,
                chosen: None,
                best_local: shown.best_local().copied(),
                best_edge: shown.best_edge().copied(),
                deadline_ms: req.deadline_us.map(|d| d as f32 / 1e3),
                thermal: self.governor.output() as f32,
            },
        }
    }
}
