//! All estimators of one board, and the observations that feed them.
//!
//! Plain data in fixed arrays: the decision path reads it through `&Estimators` with no lock
//! and no allocation. Whoever owns the decider feeds it [`Observation`]s in time order.

use super::config::{DecideConfig, MAX_FORMS, MAX_MODELS, MAX_TARGETS};
use super::cost::RequestInfo;
use super::edge::EdgeEstimator;
use super::ewma::Ewma;
use super::local::{LocalCompute, LocalQueue, Slowdown, SystemState};
use super::probe::{self, ProbeInputs, ProbeLimits, ProbePlan};
use super::targets::{FormId, ModelId, TargetId, TargetKind, Targets};

/// Something the device measured. Times in µs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// A system probe sweep (CPU load of other processes, clock ratio, temperature).
    System(SystemState),
    /// A request was queued for the local runner.
    LocalQueued(TargetId),
    /// The local runner started one (it left the queue).
    LocalStarted(TargetId),
    /// A queued local run was dropped before it started.
    LocalDropped(TargetId),
    /// A local run finished; `compute_us` excludes time spent queued.
    LocalFinished {
        /// Where it ran.
        target: TargetId,
        /// Measured compute time.
        compute_us: u32,
        /// Whether it produced a result.
        ok: bool,
    },
    /// A local run was stopped part-way (cancelled: the request was answered elsewhere, its
    /// deadline passed, its client left) after computing `ran_us`: it would have taken at least
    /// that long.
    LocalStopped {
        /// Where it ran.
        target: TargetId,
        /// Compute time until it stopped.
        ran_us: u32,
    },
    /// A request of `up_bytes` was sent to an edge (its bytes join the uplink's queue).
    OffloadSent {
        /// The edge.
        target: TargetId,
        /// Bytes sent.
        up_bytes: u32,
    },
    /// An edge answered.
    OffloadAnswered {
        /// The edge.
        target: TargetId,
        /// The model it ran.
        model: ModelId,
        /// The form its input was sent in (a split's edge compute is its tail's).
        form: FormId,
        /// Bytes sent.
        up_bytes: u32,
        /// Bytes received.
        down_bytes: u32,
        /// Send to answer, as the device measured it, minus the wait behind the device's own
        /// earlier uploads that [`EdgeEstimator::uplink_wait_us`] predicted at the send (that
        /// wait is the backlog's, not the link's).
        total_us: u32,
        /// Queue wait the edge reported.
        edge_queue_us: u32,
        /// Compute time the edge reported.
        edge_compute_us: u32,
    },
    /// The edge refused: busy.
    OffloadBusy {
        /// The edge.
        target: TargetId,
        /// Queue wait it reported with the refusal, if any.
        edge_queue_us: Option<u32>,
    },
    /// Transport error or hard timeout.
    OffloadFailed(TargetId),
    /// The device stopped waiting (the other path answered first) after `waited_us`; if that is
    /// longer than predicted, it still says the link is at least this slow.
    OffloadAbandoned {
        /// The edge.
        target: TargetId,
        /// The model.
        model: ModelId,
        /// Bytes sent.
        up_bytes: u32,
        /// Bytes expected back.
        down_bytes: u32,
        /// How long it had been out.
        waited_us: u32,
    },
    /// An offload the device had abandoned ([`Observation::OffloadAbandoned`]) ended without an
    /// answer: refused, failed, or no answer within the edge's timeout. It counts as a failure,
    /// and the link is at least as slow as `waited_us` says (in-flight accounting was settled
    /// at the abandonment). Without it, a collapsed link on which every offload is overtaken
    /// by the local run would look as fast as it was before the collapse.
    OffloadExpired {
        /// The edge.
        target: TargetId,
        /// The model.
        model: ModelId,
        /// Bytes sent.
        up_bytes: u32,
        /// Bytes expected back.
        down_bytes: u32,
        /// Send to the end, minus the predicted wait behind the device's earlier uploads.
        waited_us: u32,
    },
    /// An edge's answer arrived after the request had already been answered by the other path
    /// (after an [`Observation::OffloadAbandoned`]). The request gains nothing from it, but it
    /// is a complete measurement of the link and the edge: without it, a link slower than the
    /// deadline allows is only ever seen as "at least as slow as we waited".
    OffloadLate {
        /// The edge.
        target: TargetId,
        /// The model it ran.
        model: ModelId,
        /// The form its input was sent in (a split's edge compute is its tail's).
        form: FormId,
        /// Bytes sent.
        up_bytes: u32,
        /// Bytes received.
        down_bytes: u32,
        /// Send to answer, as the device measured it, minus the wait behind the device's own
        /// earlier uploads that [`EdgeEstimator::uplink_wait_us`] predicted at the send (that
        /// wait is the backlog's, not the link's).
        total_us: u32,
        /// Queue wait the edge reported.
        edge_queue_us: u32,
        /// Compute time the edge reported.
        edge_compute_us: u32,
    },
    /// A probe was sent.
    ProbeSent(TargetId),
    /// A probe came back.
    ProbeAnswered {
        /// The edge.
        target: TargetId,
        /// Ping round trip (no payload).
        rtt_us: u32,
        /// Payload bytes up.
        up_bytes: u32,
        /// Payload bytes down.
        down_bytes: u32,
        /// Time of the payload exchange.
        transfer_us: u32,
        /// Queue wait the edge reported, if any.
        edge_queue_us: Option<u32>,
    },
    /// A probe failed or timed out.
    ProbeFailed(TargetId),
    /// The device made a request's input into a shaped form before offloading it.
    Shaped {
        /// The model.
        model: ModelId,
        /// The form (not the original).
        form: FormId,
        /// The request in that form on the wire, bytes.
        up_bytes: u32,
        /// Time it took to make, µs.
        encode_us: u32,
    },
}

/// What a shaped form of one model's input costs: its bytes, and the time to make it on the
/// board at no load (scaled by the same slowdown as local compute when predicted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FormEstimate {
    /// Bytes of one request in the form.
    pub up_bytes: Ewma,
    /// Time to make it, unloaded and unthrottled, µs.
    pub encode_base_us: Ewma,
    /// The edge's compute for it as a share of the whole model's (fixed, from the config).
    pub edge_share: f64,
}

/// Every estimator.
#[derive(Debug, Clone)]
pub struct Estimators {
    /// Latest system state.
    pub system: SystemState,
    /// Load/throttle slowdown.
    pub slowdown: Slowdown,
    local: [LocalCompute; MAX_TARGETS],
    /// The local runner.
    pub local_queue: LocalQueue,
    edges: [EdgeEstimator; MAX_TARGETS],
    /// Per model and shaped form (form `k` at index `k - 1`).
    forms: [[FormEstimate; MAX_FORMS]; MAX_MODELS],
    interarrival_us: Ewma,
    demand_us: Ewma,
    last_request_us: Option<u64>,
    breaker_errors: u32,
}

impl Estimators {
    /// Fresh estimators with the targets' priors.
    pub fn new(targets: &Targets, config: &DecideConfig) -> Estimators {
        let a = config.alpha;
        let mut local = [LocalCompute::new(a, 50_000.0); MAX_TARGETS];
        let mut edges = [EdgeEstimator::new(a, 20_000.0); MAX_TARGETS];
        for t in targets.iter() {
            match t.kind {
                TargetKind::Local { prior_us, .. } => local[t.id.index()] = LocalCompute::new(a, prior_us),
                TargetKind::Edge { compute_prior_us, .. } => {
                    edges[t.id.index()] = EdgeEstimator::new(a, compute_prior_us)
                }
            }
        }
        let blank = FormEstimate { up_bytes: Ewma::new(a), encode_base_us: Ewma::new(a), edge_share: 1.0 };
        let mut forms = [[blank; MAX_FORMS]; MAX_MODELS];
        for (m, row) in forms.iter_mut().enumerate() {
            for (k, f) in targets.forms_of(ModelId(m as u8)).iter().enumerate().take(MAX_FORMS) {
                row[k] = FormEstimate {
                    up_bytes: Ewma::with_prior(a, f64::from(f.prior_up_bytes), 0.0),
                    encode_base_us: Ewma::with_prior(a, f.prior_encode_us, 0.0),
                    edge_share: f.edge_share,
                };
            }
        }
        Estimators {
            system: SystemState::default(),
            slowdown: Slowdown::new(a),
            local,
            local_queue: LocalQueue::default(),
            edges,
            forms,
            interarrival_us: Ewma::with_prior(a, 1_000_000.0, 0.0),
            demand_us: Ewma::new(a),
            last_request_us: None,
            breaker_errors: config.breaker_errors,
        }
    }

    /// A local target's compute estimator (meaningless for edge ids).
    pub fn local(&self, id: TargetId) -> &LocalCompute {
        &self.local[id.index() % MAX_TARGETS]
    }

    /// An edge target's estimator (meaningless for local ids).
    pub fn edge(&self, id: TargetId) -> &EdgeEstimator {
        &self.edges[id.index() % MAX_TARGETS]
    }

    /// What sending `model`'s input in shaped `form` costs now: (bytes, time to make it under
    /// the current system state µs, the edge's share of its whole-model compute). `None` for
    /// the original or an unknown form.
    pub fn form_cost(&self, model: ModelId, form: FormId) -> Option<(u32, f64, f64)> {
        let k = usize::from(form.0).checked_sub(1)?;
        let f = self.forms.get(model.index())?.get(k)?;
        let bytes = f.up_bytes.mean().round().clamp(1.0, f64::from(u32::MAX)) as u32;
        Some((bytes, f.encode_base_us.mean() * self.slowdown.factor(&self.system), f.edge_share))
    }

    /// The edge's compute for `model` in `form` as a share of the whole model's (1 for the
    /// original and for shaped inputs).
    fn edge_share(&self, model: ModelId, form: FormId) -> f64 {
        usize::from(form.0)
            .checked_sub(1)
            .and_then(|k| self.forms.get(model.index())?.get(k))
            .map_or(1.0, |f| f.edge_share)
    }

    /// Predicted local compute for a target under the current system state (mean, std), µs.
    pub fn local_compute_us(&self, id: TargetId) -> (f64, f64) {
        let f = self.slowdown.factor(&self.system);
        let b = self.local(id).base();
        (b.mean() * f, b.std() * f)
    }

    /// Predicted wait on the local runner before a new run of `target` would start, µs.
    pub fn local_wait_us(&self, now_us: u64, target: TargetId) -> f64 {
        let own = self.local_compute_us(target).0;
        self.local_queue.wait_us(now_us, own, |i| self.local_compute_us(TargetId(i as u8)).0)
    }

    /// Mean time between requests, µs.
    pub fn interarrival_us(&self) -> f64 {
        self.interarrival_us.mean()
    }

    /// Local CPU demand of our own requests: the local compute time per request (over all
    /// models, under the present load) divided by the time between requests, in cores.
    pub fn own_demand(&self) -> f64 {
        self.demand_us.mean() / self.interarrival_us.mean().max(1.0)
    }

    /// Records what the request just decided would cost locally, µs (for [`Self::own_demand`]).
    pub fn on_local_demand(&mut self, compute_us: f64) {
        self.demand_us.update(compute_us);
    }

    /// Records a request arrival (for the demand estimate and the probe plan), and brings
    /// what a still unanswered collapsed offload proves up to date.
    pub fn on_request(&mut self, now_us: u64) {
        if let Some(last) = self.last_request_us {
            self.interarrival_us.update(now_us.saturating_sub(last) as f64);
        }
        self.last_request_us = Some(now_us);
        for e in &mut self.edges {
            e.raise_pending(now_us);
        }
    }

    /// Requests per second at `now_us`: 1 / max(mean time between requests, time since the
    /// last one), so that it decays once requests stop; 0 before the first.
    pub fn request_rate(&self, now_us: u64) -> f64 {
        match self.last_request_us {
            None => 0.0,
            Some(last) => 1e6 / self.interarrival_us.mean().max(now_us.saturating_sub(last) as f64).max(1.0),
        }
    }

    /// What a request like `req` would gain per request on edge `id` at its best recent state
    /// ([`EdgeEstimator::recovered_us`]) over its best local path now, µs (0 if nothing; no
    /// local path serving it means there is no stream to gain for).
    pub fn recovery_gain_us(&self, targets: &Targets, id: TargetId, req: &RequestInfo, now_us: u64) -> f64 {
        let local = targets
            .iter()
            .filter(|t| t.is_local() && t.serves(req.model))
            .map(|t| self.local_wait_us(now_us, t.id) + self.local_compute_us(t.id).0)
            .fold(f64::INFINITY, f64::min);
        if !local.is_finite() {
            return 0.0;
        }
        let edge = self.edge(id).recovered_us(req.model.index(), req.up_bytes, req.down_bytes);
        (local - edge).max(0.0)
    }

    /// Averages what request `req` would gain on each edge recovered into that edge's
    /// `gain_us` (called for every request decided).
    pub fn note_recovery_gain(&mut self, targets: &Targets, req: &RequestInfo, now_us: u64) {
        for t in targets.iter().filter(|t| !t.is_local()) {
            let g = self.recovery_gain_us(targets, t.id, req, now_us);
            self.edges[t.id.index() % MAX_TARGETS].gain_us.update(g);
        }
    }

    /// How often edge `id` is probed while unused, with what, and what that costs (see
    /// [`crate::probe`]): the gain is the edge's average over recent requests, the present
    /// local state taken for the latest one (`last`) — an edge whose gain is judged on stale
    /// local times would not notice the board got busy.
    pub fn probe_plan(&self, targets: &Targets, id: TargetId, now_us: u64, last: Option<&RequestInfo>, config: &DecideConfig) -> ProbePlan {
        let e = self.edge(id);
        let now_gain = last.map_or(0.0, |r| self.recovery_gain_us(targets, id, r, now_us));
        let inputs = ProbeInputs {
            request_rate: self.request_rate(now_us),
            gain_us: e.gain_us.mean().max(now_gain),
            bytes: e.probe_bytes(config.probe_bytes.max(1)),
            up_pace_us: e.link.up_pace().mean(),
            rtt_us: e.link.rtt().mean(),
            measured: e.link.up_pace().samples() > 0,
            failures: e.consecutive_errors(),
        };
        let limits = ProbeLimits {
            min_interval_us: u64::from(config.probe_after_ms) * 1000,
            idle_interval_us: u64::from(config.probe_idle_ms) * 1000,
            max_share: config.probe_max_share,
        };
        probe::plan(&inputs, &limits)
    }

    /// Applies one observation made at `now_us`.
    pub fn observe(&mut self, obs: Observation, now_us: u64) {
        let edge = match obs {
            Observation::OffloadAnswered { target, .. }
            | Observation::OffloadLate { target, .. }
            | Observation::ProbeAnswered { target, .. }
            | Observation::OffloadAbandoned { target, .. }
            | Observation::OffloadExpired { target, .. } => Some(target),
            _ => None,
        };
        self.apply(obs, now_us);
        if let Some(t) = edge {
            self.edges[t.index() % MAX_TARGETS].note_pace(now_us);
        }
    }

    fn apply(&mut self, obs: Observation, now_us: u64) {
        match obs {
            Observation::System(s) => self.system = s.sanitized(),
            Observation::LocalQueued(t) => self.local_queue.queued(t),
            Observation::LocalDropped(t) => self.local_queue.left(t),
            Observation::LocalStarted(t) => {
                self.local_queue.left(t);
                self.local_queue.running = Some((now_us, self.local_compute_us(t).0));
            }
            Observation::LocalFinished { target, compute_us, ok } => {
                self.local_queue.running = None;
                if ok {
                    let s = self.system;
                    let i = target.index() % MAX_TARGETS;
                    self.local[i].update(f64::from(compute_us), &s, &mut self.slowdown);
                }
            }
            Observation::LocalStopped { target, ran_us } => {
                self.local_queue.running = None;
                let s = self.system;
                let i = target.index() % MAX_TARGETS;
                self.local[i].on_ran_at_least(f64::from(ran_us), &s, &mut self.slowdown);
            }
            Observation::OffloadSent { target, up_bytes } => {
                let e = &mut self.edges[target.index() % MAX_TARGETS];
                e.inflight = e.inflight.saturating_add(1);
                e.last_used_us = now_us;
                e.on_sent(now_us, up_bytes);
            }
            Observation::OffloadAnswered { target, model, form, up_bytes, down_bytes, total_us, edge_queue_us, edge_compute_us } => {
                let share = self.edge_share(model, form);
                let e = &mut self.edges[target.index() % MAX_TARGETS];
                e.inflight = e.inflight.saturating_sub(1);
                e.last_used_us = now_us;
                e.on_delivered(now_us, up_bytes);
                e.on_answer_in_form(
                    now_us,
                    model.index(),
                    up_bytes,
                    down_bytes,
                    f64::from(total_us),
                    f64::from(edge_queue_us),
                    f64::from(edge_compute_us),
                    share,
                );
            }
            Observation::OffloadBusy { target, edge_queue_us } => {
                let e = &mut self.edges[target.index() % MAX_TARGETS];
                e.inflight = e.inflight.saturating_sub(1);
                e.last_used_us = now_us;
                e.on_busy(edge_queue_us.map(f64::from));
            }
            Observation::OffloadFailed(t) => {
                let breaker = self.breaker_errors;
                let e = &mut self.edges[t.index() % MAX_TARGETS];
                e.inflight = e.inflight.saturating_sub(1);
                e.on_error(now_us, breaker);
            }
            Observation::OffloadAbandoned { target, model, up_bytes, down_bytes, waited_us } => {
                let e = &mut self.edges[target.index() % MAX_TARGETS];
                e.inflight = e.inflight.saturating_sub(1);
                e.on_waited_at_least(now_us, model.index(), up_bytes, down_bytes, f64::from(waited_us));
            }
            Observation::OffloadExpired { target, model, up_bytes, down_bytes, waited_us } => {
                let breaker = self.breaker_errors;
                let e = &mut self.edges[target.index() % MAX_TARGETS];
                e.on_waited_at_least(now_us, model.index(), up_bytes, down_bytes, f64::from(waited_us));
                e.settle_pending();
                e.on_error(now_us, breaker);
            }
            Observation::OffloadLate { target, model, form, up_bytes, down_bytes, total_us, edge_queue_us, edge_compute_us } => {
                let share = self.edge_share(model, form);
                // In-flight accounting was settled when the request was abandoned.
                let e = &mut self.edges[target.index() % MAX_TARGETS];
                e.on_delivered(now_us, up_bytes);
                e.on_answer_in_form(
                    now_us,
                    model.index(),
                    up_bytes,
                    down_bytes,
                    f64::from(total_us),
                    f64::from(edge_queue_us),
                    f64::from(edge_compute_us),
                    share,
                );
            }
            Observation::ProbeSent(t) => {
                let e = &mut self.edges[t.index() % MAX_TARGETS];
                e.probing = true;
                e.last_used_us = now_us;
            }
            Observation::ProbeAnswered { target, rtt_us, up_bytes, down_bytes, transfer_us, edge_queue_us } => {
                let e = &mut self.edges[target.index() % MAX_TARGETS];
                e.last_used_us = now_us;
                e.on_delivered(now_us, up_bytes);
                e.on_probe(
                    f64::from(rtt_us),
                    up_bytes,
                    down_bytes,
                    f64::from(transfer_us),
                    edge_queue_us.map(f64::from),
                );
            }
            Observation::ProbeFailed(t) => {
                let breaker = self.breaker_errors;
                let e = &mut self.edges[t.index() % MAX_TARGETS];
                e.probing = false;
                e.last_used_us = now_us;
                e.on_error(now_us, breaker);
            }
            Observation::Shaped { model, form, up_bytes, encode_us } => {
                let factor = self.slowdown.factor(&self.system);
                let Some(k) = usize::from(form.0).checked_sub(1) else { return };
                if let Some(f) = self.forms.get_mut(model.index()).and_then(|row| row.get_mut(k)) {
                    f.up_bytes.update(f64::from(up_bytes));
                    f.encode_base_us.update(f64::from(encode_us) / factor.max(1e-3));
                }
            }
        }
    }

    /// The first edge due a probe at `now_us`, if any, on the cadence of its
    /// [`Self::probe_plan`].
    pub fn probe_due(&self, targets: &Targets, now_us: u64, last: Option<&RequestInfo>, config: &DecideConfig) -> Option<TargetId> {
        targets
            .iter()
            .filter(|t| !t.is_local())
            .find(|t| {
                let plan = self.probe_plan(targets, t.id, now_us, last, config);
                self.edge(t.id).probe_due(now_us, plan.interval_us)
            })
            .map(|t| t.id)
    }
}
