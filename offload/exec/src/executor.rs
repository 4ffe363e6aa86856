//! `Executor::submit`: one request from decision to answer.
//!
//! The request's future is its life: dropped before the answer (the API's client went away),
//! it cancels the request — a queued local run is withdrawn, a running one stopped, an
//! offload no longer waited for. A request of a stream in freshest-frame mode supersedes the
//! stream's previous request while that one has not started anywhere.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};

use super::gate::LocalGate;
use super::paths::{LocalResult, LocalRunner, Shaper};
use ferry_decide::{
    offload_stop_cause, queue, Action, Answer, Constraints, Decider, Event, ModelId, OffloadEnd, OffloadWatch,
    FormId, Observation, Ran, RequestInfo, RequestMachine, StopCause, TargetId,
};
use ferry_protocol::{encoded_request_len, EdgeTimings, Input, Request, Response, Status};
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
    /// The input form the decision chose for its offload (`original` also when it was not
    /// offloaded).
    pub form: String,
}

/// What a request asks beyond its model, input and deadline.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Placement, mode, best effort.
    pub constraints: Constraints,
    /// The stream it belongs to (frames of one camera, say), for freshest-frame.
    pub stream: Option<String>,
    /// Freshest-frame for this request; `None`: `[decide] freshest`.
    pub freshest: Option<bool>,
}

/// What the executor counts of its own doing (the agent's status page shows them).
#[derive(Debug, Default)]
pub struct ExecCounters {
    /// Requests cancelled before their answer (their future was dropped).
    pub cancelled: std::sync::atomic::AtomicU64,
    /// Local runs withdrawn from the queue before they started (cancelled or superseded).
    pub local_withdrawn: std::sync::atomic::AtomicU64,
    /// Local runs stopped part-way.
    pub local_stopped: std::sync::atomic::AtomicU64,
    /// Local compute spent, µs, by every run (finished or stopped).
    pub local_compute_us: std::sync::atomic::AtomicU64,
}

/// The latest request of each stream in freshest-frame mode: its id and its supersede signal.
type Streams = Mutex<HashMap<String, (u64, Arc<Notify>)>>;

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
    streams: Streams,
    counters: Arc<ExecCounters>,
    next_seq: std::sync::atomic::AtomicU64,
    epoch: Instant,
    /// Makes shaped forms of image inputs; `None`: every offload sends the original.
    shaper: Option<Arc<dyn Shaper>>,
}

enum PathEvent {
    /// The local run holds the runner.
    LocalStarted,
    /// The local queue was full.
    LocalBusy,
    Local(Result<LocalResult, String>),
    Edge(Result<Response, LinkError>),
}

/// Stops a request's paths when its future is dropped before the answer.
struct CancelOnDrop<'a> {
    answered: bool,
    local_cancelled: Arc<AtomicBool>,
    local_wake: Arc<Notify>,
    offload: SharedOffload,
    decider: &'a Mutex<Decider>,
    counters: &'a ExecCounters,
    epoch: Instant,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
        self.local_cancelled.store(true, Ordering::Release);
        self.local_wake.notify_one();
        let mut slot = lock_offload(&self.offload);
        if let Some(o) = slot.as_mut() {
            let waited_us = o.reported_us();
            if let Some(obs) = o.watch.stop_waiting(StopCause::Overtaken, waited_us) {
                lock(self.decider).observe(obs, clamp_now(self.epoch));
            }
        }
    }
}

/// Removes a request from its stream's slot when it ends (if it is still the stream's latest).
struct StreamSlot<'a> {
    streams: &'a Streams,
    stream: String,
    seq: u64,
}

impl Drop for StreamSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&self.stream).is_some_and(|(seq, _)| *seq == self.seq) {
            map.remove(&self.stream);
        }
    }
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
            streams: Mutex::new(HashMap::new()),
            counters: Arc::new(ExecCounters::default()),
            next_seq: std::sync::atomic::AtomicU64::new(1),
            epoch: Instant::now(),
            shaper: None,
        }
    }

    /// With a shaper: image requests may then be offloaded in the shaped forms the decider's
    /// config offers ([`ferry_decide::FormConfig`]), when the decision says one costs less.
    pub fn with_shaper(mut self, shaper: Arc<dyn Shaper>) -> Self {
        self.shaper = Some(shaper);
        self
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

    /// What the executor counted (cancellations, withdrawn and stopped runs, local compute).
    pub fn counters(&self) -> &ExecCounters {
        &self.counters
    }

    /// Local runs waiting for the runner now.
    pub fn local_waiting(&self) -> usize {
        self.local_gate.waiting()
    }

    /// Runs `f` with the decider (for status pages and probes); keep it short.
    pub fn with_decider<T>(&self, f: impl FnOnce(&Decider) -> T) -> T {
        f(&lock(&self.decider))
    }

    /// Decides where `request` runs, runs it there (falling back as the scheduler says), and
    /// returns its one answer.
    pub async fn submit(&self, request: Request) -> Result<Outcome, ExecError> {
        self.submit_with(request, SubmitOptions::default()).await
    }

    /// [`Executor::submit`] within the request's constraints, as part of a stream.
    /// Dropping the future before it resolves cancels the request.
    pub async fn submit_with(&self, request: Request, opts: SubmitOptions) -> Result<Outcome, ExecError> {
        let model = lock(&self.decider)
            .model_id(request.model.as_str())
            .ok_or_else(|| ExecError::UnknownModel(request.model.as_str().to_string()))?;
        let up_bytes = u32::try_from(encoded_request_len(&request.as_ref())).unwrap_or(u32::MAX);
        let info = RequestInfo {
            model,
            up_bytes,
            down_bytes: DEFAULT_DOWN_BYTES,
            deadline_us: request.deadline_ms.map(|ms| ms.saturating_mul(1000)),
            shapeable: self.shaper.is_some() && matches!(request.input, Input::Image { .. }),
        };
        let start = self.now_us();
        let (decision, freshest_default) = {
            let mut d = lock(&self.decider);
            (d.decide_with(&info, &opts.constraints, start), d.config().freshest)
        };
        let edge_timeout = Duration::from_micros(decision.edge_timeout_us.max(1_000));
        let form = decision.form();
        let (mut machine, mut actions) = RequestMachine::start(decision, start, info.deadline_us);

        let request = Arc::new(request);
        // At most a few events per path per request (started, then its result).
        let (tx, mut rx) = mpsc::channel::<PathEvent>(8);
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
        // Set when the scheduler cancels the local path: a run still queued is then withdrawn
        // (woken by `local_wake`), a running one stops.
        let local_cancelled = Arc::new(AtomicBool::new(false));
        let local_wake = Arc::new(Notify::new());
        let mut guard = CancelOnDrop {
            answered: false,
            local_cancelled: local_cancelled.clone(),
            local_wake: local_wake.clone(),
            offload: offload.clone(),
            decider: &self.decider,
            counters: &self.counters,
            epoch: self.epoch,
        };
        // Freshest-frame: this request becomes its stream's latest; the previous one is told.
        let supersede = Arc::new(Notify::new());
        let _slot = match (&opts.stream, opts.freshest.unwrap_or(freshest_default)) {
            (Some(stream), true) => {
                let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                let mut map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((_, older)) = map.insert(stream.clone(), (seq, supersede.clone())) {
                    older.notify_one();
                }
                Some(StreamSlot { streams: &self.streams, stream: stream.clone(), seq })
            }
            _ => None,
        };

        loop {
            let mut answer = None;
            for action in actions.iter() {
                match *action {
                    Action::StartLocal(t) => self.start_local(t, &request, &tx, &local_cancelled, &local_wake),
                    Action::StartOffload(t) => {
                        if form == FormId::ORIGINAL || self.shaper.is_none() {
                            self.start_edge(t, model, up_bytes, &request, edge_timeout, &offload, &tx);
                        } else {
                            self.start_shaped_edge(t, model, form, up_bytes, &request, edge_timeout, &offload, &tx);
                        }
                    }
                    Action::SetTimer(at) => timer = Some(at),
                    // A queued run is dropped before it starts; a running one is asked to stop
                    // (tract stops before its next node) and its result, if any, is dropped.
                    Action::CancelLocal => {
                        local_cancelled.store(true, Ordering::Release);
                        local_wake.notify_one();
                    }
                    Action::CancelOffload => {
                        let cause = offload_stop_cause(&actions, from_timer);
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
                guard.answered = true;
                return Ok(self.outcome(answer, &request, (model, form), local_response, edge_response, last_error));
            }

            let wait = timer.map(|at| Duration::from_micros(at.saturating_sub(self.now_us())));
            let event = tokio::select! {
                ev = rx.recv() => Wake::Path(ev),
                _ = sleep_or_never(wait) => { timer = None; Wake::Timer }
                _ = supersede.notified() => Wake::Superseded,
            };
            from_timer = matches!(event, Wake::Timer);
            let event = match event {
                Wake::Timer | Wake::Path(None) => Event::Timer,
                Wake::Superseded => Event::Superseded,
                Wake::Path(Some(PathEvent::LocalStarted)) => Event::LocalStarted,
                Wake::Path(Some(PathEvent::LocalBusy)) => Event::LocalBusy,
                Wake::Path(Some(PathEvent::Local(Ok(result)))) => {
                    local_response = Some(result.response);
                    Event::LocalDone
                }
                Wake::Path(Some(PathEvent::Local(Err(e)))) => {
                    last_error = format!("local run failed: {e}");
                    Event::LocalFailed
                }
                Wake::Path(Some(PathEvent::Edge(Ok(response)))) => match response.status {
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
                Wake::Path(Some(PathEvent::Edge(Err(e)))) => {
                    last_error = format!("offload failed: {e}");
                    Event::OffloadFailed
                }
            };
            actions = machine.handle(event, self.now_us());
        }
    }

    fn start_local(
        &self,
        target: TargetId,
        request: &Arc<Request>,
        tx: &mpsc::Sender<PathEvent>,
        cancelled: &Arc<AtomicBool>,
        wake: &Arc<Notify>,
    ) {
        // Queued, and with what order key (shortest first with aging) and bound, under one lock.
        let (key, max) = {
            let mut d = lock(&self.decider);
            let now = self.now_us();
            d.observe(Observation::LocalQueued(target), now);
            let cost = d.estimators().local_compute_us(target).0;
            (queue::order_key(now, cost, d.config().aging_factor), d.config().local_queue_max)
        };
        let (local, decider, epoch, gate) = (self.local.clone(), self.decider.clone(), self.epoch, self.local_gate.clone());
        let (request, tx, cancelled, wake, counters) = (request.clone(), tx.clone(), cancelled.clone(), wake.clone(), self.counters.clone());
        tokio::spawn(async move {
            let queued = Instant::now();
            let dropped = |why: PathEvent| {
                lock(&decider).observe(Observation::LocalDropped(target), clamp_now(epoch));
                why
            };
            // Withdrawn from the queue as soon as the request no longer needs the run.
            let acquired = tokio::select! {
                a = gate.acquire(key, max) => a,
                _ = wait_cancelled(&cancelled, &wake) => {
                    counters.local_withdrawn.fetch_add(1, Ordering::Relaxed);
                    dropped(PathEvent::LocalBusy);
                    return;
                }
            };
            let Ok(_permit) = acquired else {
                let _ = tx.send(dropped(PathEvent::LocalBusy)).await;
                return;
            };
            if cancelled.load(Ordering::Acquire) {
                counters.local_withdrawn.fetch_add(1, Ordering::Relaxed);
                dropped(PathEvent::LocalBusy);
                return;
            }
            lock(&decider).observe(Observation::LocalStarted(target), clamp_now(epoch));
            let _ = tx.try_send(PathEvent::LocalStarted);
            let queued_us = clamp_u32(queued.elapsed().as_micros().min(u128::from(u64::MAX)) as u64);
            let started = Instant::now();
            let mut result = local.run(target, request, cancelled.clone()).await;
            counters.local_compute_us.fetch_add(started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
            if result.is_err() && cancelled.load(Ordering::Acquire) {
                counters.local_stopped.fetch_add(1, Ordering::Relaxed);
            }
            // The gate is the one local queue: the wait in it is the answer's queue time.
            if let Ok(r) = result.as_mut() {
                r.response.timings.queue_wait_us = queued_us;
            }
            let obs = match &result {
                Ok(r) => Observation::LocalFinished { target, compute_us: r.compute_us, ok: true },
                // Stopped part-way: it would have taken at least this long (censored).
                Err(_) if cancelled.load(Ordering::Acquire) => {
                    Observation::LocalStopped { target, ran_us: clamp_u32(started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64) }
                }
                Err(_) => Observation::LocalFinished { target, compute_us: 0, ok: false },
            };
            lock(&decider).observe(obs, clamp_now(epoch));
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
        let now = self.now_us();
        let backlog_us = self.with_decider(|d| d.estimators().edge(target).uplink_wait_us(now)) as u64;
        let send = OffloadSend { decider: self.decider.clone(), epoch: self.epoch, offload: offload.clone(), tx: tx.clone() };
        send.sent(target, model, FormId::ORIGINAL, up_bytes, backlog_us);
        let request = (**request).clone();
        tokio::spawn(send.offload(link, request, timeout));
    }

    /// Like [`Self::start_edge`], the input first made into shaped `form` on a blocking
    /// thread (its time and bytes observed): the offload leaves once it is made, unless the
    /// request was answered meanwhile. If it cannot be made, the original is sent.
    #[allow(clippy::too_many_arguments)]
    fn start_shaped_edge(
        &self,
        target: TargetId,
        model: ModelId,
        form: FormId,
        original_bytes: u32,
        request: &Arc<Request>,
        timeout: Duration,
        offload: &SharedOffload,
        tx: &mpsc::Sender<PathEvent>,
    ) {
        let (Some(link), Some(shaper)) = (self.edges.get(target.index()).cloned().flatten(), self.shaper.clone()) else {
            return self.start_edge(target, model, original_bytes, request, timeout, offload, tx);
        };
        let name = self.with_decider(|d| d.targets().form_name(model, form).to_owned());
        let send = OffloadSend { decider: self.decider.clone(), epoch: self.epoch, offload: offload.clone(), tx: tx.clone() };
        let request = request.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let input = request.clone();
            let made = tokio::task::spawn_blocking(move || shaper.shape(&input, &name).map_err(|e| (name, e))).await;
            let encode_us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            let (shaped, up_bytes, sent_form) = match made {
                Ok(Ok(shaped)) => {
                    let up_bytes = u32::try_from(encoded_request_len(&shaped.as_ref())).unwrap_or(u32::MAX);
                    lock(&send.decider).observe(Observation::Shaped { model, form, up_bytes, encode_us }, clamp_now(send.epoch));
                    (shaped, up_bytes, form)
                }
                Ok(Err((name, why))) => {
                    tracing::warn!(form = %name, error = %why, "could not make the input's shaped form; sending the original");
                    ((*request).clone(), original_bytes, FormId::ORIGINAL)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the shaping task failed; sending the original");
                    ((*request).clone(), original_bytes, FormId::ORIGINAL)
                }
            };
            // Answered by the other path while the form was made: nothing to send.
            if send.tx.is_closed() {
                return;
            }
            let now = clamp_now(send.epoch);
            let backlog = lock(&send.decider).estimators().edge(target).uplink_wait_us(now) as u64;
            send.sent(target, model, sent_form, up_bytes, backlog);
            send.offload(link, shaped, timeout).await;
        });
    }

    fn outcome(
        &self,
        answer: Answer,
        request: &Request,
        (model, form): (ModelId, FormId),
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
        let (ran_on, form) = self.with_decider(|d| {
            let ran_on = target.map_or_else(|| "-".to_string(), |t| d.targets().name(t).to_string());
            (ran_on, d.targets().form_name(model, form).to_string())
        });
        let response = response.unwrap_or_else(|| Response {
            request_id: request.request_id,
            status: Status::Internal,
            detail: if last_error.is_empty() { "no path could run this request".to_string() } else { last_error },
            timings: EdgeTimings::default(),
            top_k: Vec::new(),
            output: None,
        });
        Outcome { answer, response, ran_on, form }
    }
}

/// What woke a request's loop.
enum Wake {
    Path(Option<PathEvent>),
    Timer,
    Superseded,
}

async fn sleep_or_never(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Resolves once `cancelled` is set (`wake` is notified whenever it is).
async fn wait_cancelled(cancelled: &AtomicBool, wake: &Notify) {
    loop {
        if cancelled.load(Ordering::Acquire) {
            return;
        }
        wake.notified().await;
    }
}

/// What an offload's sending needs: the decider it teaches, the request's offload slot and
/// its path events.
struct OffloadSend {
    decider: Arc<Mutex<Decider>>,
    epoch: Instant,
    offload: SharedOffload,
    tx: mpsc::Sender<PathEvent>,
}

impl OffloadSend {
    /// Records the offload, its input in `form`, as sent now: `up_bytes` join the uplink, the
    /// watch starts.
    fn sent(&self, target: TargetId, model: ModelId, form: FormId, up_bytes: u32, backlog_us: u64) {
        let (watch, sent) = OffloadWatch::sent(target, model, form, up_bytes, DEFAULT_DOWN_BYTES);
        lock(&self.decider).observe(sent, clamp_now(self.epoch));
        *lock_offload(&self.offload) = Some(Offload { watch, sent_at: Instant::now(), backlog_us });
    }

    /// Sends it and waits for the edge; what the device learns goes to the decider, the
    /// result to the request's loop.
    async fn offload<E: EdgeLink>(self, link: Arc<E>, request: Request, timeout: Duration) {
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
        let obs = lock_offload(&self.offload).as_mut().and_then(|o| {
            let elapsed_us = o.reported_us();
            o.watch.ended(end, elapsed_us)
        });
        if let Some(obs) = obs {
            lock(&self.decider).observe(obs, clamp_now(self.epoch));
        }
        // The request may already be answered by the other path: then nobody listens.
        let _ = self.tx.send(PathEvent::Edge(result)).await;
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
