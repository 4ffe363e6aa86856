//! `Executor::submit`: one request from decision to answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::gate::LocalGate;
use super::paths::{LocalResult, LocalRunner};
use ferry_decide::{
    Action, Answer, Decider, Event, ModelId, OffloadEnd, OffloadWatch, Observation, Ran, RequestInfo, RequestMachine,
    StopCause, TargetId,
};
use ferry_protocol::{encoded_request_len, EdgeTimings, Request, Response, Status};
use ferry_transport::{EdgeLink, LinkError};

/// Bytes expected back from an edge before any answer was seen (top-5 with labels).
const DEFAULT_DOWN_BYTES: u32 = 512;

/// Why a request could not even be decided on.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No target serves this model.
    #[error("no local variant or edge serves model `{0}`")]
    UnknownModel(String),
}

/// The one answer to a request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Where it ran, why, how long it took (from the scheduler).
    pub answer: Answer,
    /// The result: the path's response, or an error response when no path produced one.
    pub response: Response,
    /// The name of the target it ran on (`"-"` when nowhere).
    pub ran_on: String,
}

/// Carries requests out over a local runner and edge links, learning from every outcome.
pub struct Executor<L, E> {
    decider: Arc<Mutex<Decider>>,
    local: Arc<L>,
    /// Indexed by `TargetId`; `None` for local targets and edges without a link.
    edges: Vec<Option<Arc<E>>>,
    /// One local inference at a time, as the decider's queue model assumes, shortest first: a
    /// run waits here (queued) until it holds the permit (started), so a cancelled run that has
    /// not started yet is dropped instead of occupying the board.
    local_gate: Arc<LocalGate>,
    epoch: Instant,
}

enum PathEvent {
    Local(Result<LocalResult, String>),
    Edge(Result<Response, LinkError>),
}

impl<L: LocalRunner, E: EdgeLink> Executor<L, E> {
    /// An executor over `decider`'s targets: `local` runs every local target, `edges` maps edge
    /// target names (as in the config) to their links.
    pub fn new(decider: Decider, local: Arc<L>, edges: Vec<(String, Arc<E>)>) -> Self {
        let targets = decider.targets();
        let mut by_id: Vec<Option<Arc<E>>> = vec![None; targets.len()];
        for (name, link) in edges {
            if let Some(t) = targets.iter().find(|t| !t.is_local() && targets.name(t.id) == name) {
                by_id[t.id.index()] = Some(link);
            }
        }
        Self {
            decider: Arc::new(Mutex::new(decider)),
            local,
            edges: by_id,
            local_gate: LocalGate::new(),
            epoch: Instant::now(),
        }
    }

    /// Microseconds since the executor started: the decider's clock.
    pub fn now_us(&self) -> u64 {
        clamp_now(self.epoch)
    }

    /// Feeds a measurement made elsewhere (system sweeps, probes).
    pub fn observe(&self, obs: Observation) {
        let now = self.now_us();
        lock(&self.decider).observe(obs, now);
    }

    /// Whether a local run holds the board or waits for it right now.
    pub fn local_busy(&self) -> bool {
        self.local_gate.is_busy()
    }

    /// Runs `f` with the decider (for status pages and probes); keep it short.
    pub fn with_decider<T>(&self, f: impl FnOnce(&Decider) -> T) -> T {
        f(&lock(&self.decider))
    }

    /// Decides where `request` runs, runs it there (falling back as the scheduler says), and
    /// returns its one answer.
    pub async fn submit(&self, request: Request) -> Result<Outcome, ExecError> {
        let model = lock(&self.decider)
            .model_id(request.model.as_str())
            .ok_or_else(|| ExecError::UnknownModel(request.model.as_str().to_string()))?;
        let up_bytes = u32::try_from(encoded_request_len(&request.as_ref())).unwrap_or(u32::MAX);
        let info = RequestInfo {
            model,
            up_bytes,
            down_bytes: DEFAULT_DOWN_BYTES,
            deadline_us: request.deadline_ms.map(|ms| ms.saturating_mul(1000)),
        };
        let start = self.now_us();
        let decision = lock(&self.decider).decide(&info, start);
        let edge_timeout = Duration::from_micros(decision.edge_timeout_us.max(1_000));
        let (mut machine, mut actions) = RequestMachine::start(decision, start, info.deadline_us);

        let request = Arc::new(request);
        // At most one event per path per request.
        let (tx, mut rx) = mpsc::channel::<PathEvent>(4);
        let mut timer: Option<u64> = None;
        let mut local_response: Option<Response> = None;
        let mut edge_response: Option<Response> = None;
        let mut last_error = String::new();
        // The offload, once sent: what the device learns of it, shared with the task that waits
        // for the edge (whichever of "stopped waiting" and "ended" comes first decides).
        let offload: SharedOffload = Arc::new(Mutex::new(None));
        // Whether the actions at hand answer the request's timer (a cancelled offload then
        // timed out) rather than a path's event (it was overtaken).
        let mut from_timer = false;
        // Set when the scheduler cancels the local path: a run still queued is then dropped.
        let local_cancelled = Arc::new(AtomicBool::new(false));

        loop {
            let mut answer = None;
            for action in actions.iter() {
                match *action {
                    Action::StartLocal(t) => self.start_local(t, &request, &tx, &local_cancelled),
                    Action::StartOffload(t) => {
                        let now = self.now_us();
                        let backlog = self.with_decider(|d| d.estimators().edge(t).uplink_wait_us(now)) as u64;
                        self.start_edge(t, model, up_bytes, &request, edge_timeout, backlog, &offload, &tx);
                    }
                    Action::SetTimer(at) => timer = Some(at),
                    // A queued run is dropped before it starts; a running one is asked to stop
                    // (tract stops before its next node) and its result, if any, is dropped.
                    Action::CancelLocal => local_cancelled.store(true, Ordering::Release),
                    Action::CancelOffload => {
                        let cause = if from_timer { StopCause::TimedOut } else { StopCause::Overtaken };
                        let mut slot = lock_offload(&offload);
                        if let Some(o) = slot.as_mut() {
                            let waited_us = o.reported_us();
                            if let Some(obs) = o.watch.stop_waiting(cause, waited_us) {
                                self.observe(obs);
                            }
                        }
                    }
                    Action::Answer(a) => answer = Some(a),
                }
            }
            if let Some(answer) = answer {
                return Ok(self.outcome(answer, &request, local_response, edge_response, last_error));
            }

            let event = match timer {
                Some(at) => {
                    let wait = Duration::from_micros(at.saturating_sub(self.now_us()));
                    tokio::select! {
                        ev = rx.recv() => ev,
                        _ = tokio::time::sleep(wait) => { timer = None; None }
                    }
                }
                None => rx.recv().await,
            };
            from_timer = event.is_none();
            let event = match event {
                None => Event::Timer,
                Some(PathEvent::Local(Ok(result))) => {
                    local_response = Some(result.response);
                    Event::LocalDone
                }
                Some(PathEvent::Local(Err(e))) => {
                    last_error = format!("local run failed: {e}");
                    Event::LocalFailed
                }
                Some(PathEvent::Edge(Ok(response))) => match response.status {
                    Status::Ok => {
                        edge_response = Some(response);
                        Event::OffloadAnswered
                    }
                    Status::Busy => Event::OffloadBusy,
                    other => {
                        last_error = format!("edge answered {}: {}", other.as_str(), response.detail);
                        Event::OffloadFailed
                    }
                },
                Some(PathEvent::Edge(Err(e))) => {
                    last_error = format!("offload failed: {e}");
                    Event::OffloadFailed
                }
            };
            actions = machine.handle(event, self.now_us());
        }
    }

    fn start_local(&self, target: TargetId, request: &Arc<Request>, tx: &mpsc::Sender<PathEvent>, cancelled: &Arc<AtomicBool>) {
        // Queued, and at what predicted cost (the gate's order), under one lock.
        let cost_us = {
            let mut d = lock(&self.decider);
            d.observe(Observation::LocalQueued(target), self.now_us());
            d.estimators().local_compute_us(target).0 as u64
        };
        let (local, decider, epoch, gate) = (self.local.clone(), self.decider.clone(), self.epoch, self.local_gate.clone());
        let (request, tx, cancelled) = (request.clone(), tx.clone(), cancelled.clone());
        tokio::spawn(async move {
            let queued = Instant::now();
            let _permit = gate.acquire(cost_us).await;
            if cancelled.load(Ordering::Acquire) {
                lock(&decider).observe(Observation::LocalDropped(target), clamp_now(epoch));
                return;
            }
            lock(&decider).observe(Observation::LocalStarted(target), clamp_now(epoch));
            let queued_us = clamp_u32(queued.elapsed().as_micros().min(u128::from(u64::MAX)) as u64);
            let mut result = local.run(target, request, cancelled.clone()).await;
            // The gate is the one local queue: the wait in it is the answer's queue time.
            if let Ok(r) = result.as_mut() {
                r.response.timings.queue_wait_us = queued_us;
            }
            let (compute_us, ok) = match &result {
                Ok(r) => (r.compute_us, true),
                Err(_) => (0, false),
            };
            lock(&decider).observe(Observation::LocalFinished { target, compute_us, ok }, clamp_now(epoch));
            // The request may already be answered by the edge: then nobody listens, and that is fine.
            let _ = tx.send(PathEvent::Local(result)).await;
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn start_edge(
        &self,
        target: TargetId,
        model: ModelId,
        up_bytes: u32,
        request: &Arc<Request>,
        timeout: Duration,
        backlog_us: u64,
        offload: &SharedOffload,
        tx: &mpsc::Sender<PathEvent>,
    ) {
        let Some(link) = self.edges.get(target.index()).cloned().flatten() else {
            // No link for this edge (not connected / not configured): fail the path at once,
            // the scheduler falls back.
            let tx = tx.clone();
            self.observe(OffloadWatch::unreachable(target));
            tokio::spawn(async move {
                let _ = tx.send(PathEvent::Edge(Err(LinkError::no_link()))).await;
            });
            return;
        };
        let (watch, sent) = OffloadWatch::sent(target, model, up_bytes, DEFAULT_DOWN_BYTES);
        self.observe(sent);
        let sent_at = Instant::now();
        *lock_offload(offload) = Some(Offload { watch, sent_at, backlog_us });
        let (decider, epoch, offload) = (self.decider.clone(), self.epoch, offload.clone());
        let (request, tx) = ((**request).clone(), tx.clone());
        tokio::spawn(async move {
            let result = link.offload(request, timeout).await;
            let end = match &result {
                Ok(r) if r.status == Status::Ok => OffloadEnd::Answered {
                    down_bytes: response_bytes(r),
                    edge_queue_us: r.timings.queue_wait_us,
                    edge_compute_us: r.timings.compute_us,
                },
                Ok(r) if r.status == Status::Busy => OffloadEnd::Busy { edge_queue_us: Some(r.timings.queue_wait_us) },
                _ => OffloadEnd::Failed,
            };
            let obs = lock_offload(&offload).as_mut().and_then(|o| {
                let elapsed_us = o.reported_us();
                o.watch.ended(end, elapsed_us)
            });
            if let Some(obs) = obs {
                lock(&decider).observe(obs, clamp_now(epoch));
            }
            // The request may already be answered by the other path: then nobody listens.
            let _ = tx.send(PathEvent::Edge(result)).await;
        });
    }

    fn outcome(
        &self,
        answer: Answer,
        request: &Request,
        local: Option<Response>,
        edge: Option<Response>,
        last_error: String,
    ) -> Outcome {
        let (response, target) = match answer.ran {
            Ran::Local(t) if answer.ok => (local, Some(t)),
            Ran::Edge(t) if answer.ok => (edge, Some(t)),
            Ran::Local(t) | Ran::Edge(t) => (None, Some(t)),
            Ran::Nowhere => (None, None),
        };
        let ran_on = target.map_or_else(|| "-".to_string(), |t| self.with_decider(|d| d.targets().name(t).to_string()));
        let response = response.unwrap_or_else(|| Response {
            request_id: request.request_id,
            status: Status::Internal,
            detail: if last_error.is_empty() { "no path could run this request".to_string() } else { last_error },
            timings: EdgeTimings::default(),
            top_k: Vec::new(),
            output: None,
        });
        Outcome { answer, response, ran_on }
    }
}

/// One request's offload once sent, shared by the request's loop and the task waiting for the edge.
type SharedOffload = Arc<Mutex<Option<Offload>>>;

struct Offload {
    watch: OffloadWatch,
    sent_at: Instant,
    /// The wait behind the device's own earlier uploads predicted at the send, µs: the
    /// backlog's, not the link's, so it is left out of every time reported.
    backlog_us: u64,
}

impl Offload {
    /// Time since the send, as the device reports it.
    fn reported_us(&self) -> u32 {
        clamp_u32(clamp_now(self.sent_at).saturating_sub(self.backlog_us))
    }
}

fn lock_offload(m: &Mutex<Option<Offload>>) -> MutexGuard<'_, Option<Offload>> {
    // Plain data that no panic can leave half-updated.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn response_bytes(r: &Response) -> u32 {
    clamp_u32(ferry_protocol::encoded_response_len(&r.as_ref()) as u64)
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn clamp_now(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
}

fn lock(m: &Mutex<Decider>) -> MutexGuard<'_, Decider> {
    // The decider holds only estimates: after a panic elsewhere, keep using them.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
