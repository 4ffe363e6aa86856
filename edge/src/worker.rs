//! The inference workers (plain threads: tract is synchronous and CPU-bound) and the queue
//! they take from (shared fairly between devices, see [`crate::queue`]). A worker takes one
//! job, then whatever else is already queued, up to `max_batch`, devices in turn, and runs
//! each model's share as one batch: dynamic batching that never waits for a batch to fill.
//! A job whose budget ran out while it waited is answered `deadline_exceeded`; once the queue
//! is closed (the server is stopping), what is left is answered `busy` without running.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use ferry_protocol::{
    encode_error_response, encode_response, DeviceId, EdgeTimings, ResponseRef, Status, TopK,
    TopKList,
};
use ferry_runtime::preprocess;
use tokio::sync::Notify;

use crate::answers::{Answers, Outgoing};
use crate::models::Served;
use crate::queue::{Admit, FairQueue};
use crate::stats::Stats;

/// A request's input, ready for a worker.
#[derive(Debug)]
pub enum JobInput {
    /// Encoded image bytes, decoded by the worker.
    Image(Vec<u8>),
    /// A raw input tensor, already checked against the model's shape.
    Tensor(Vec<f32>),
    /// An encoded image the device shaped to the model's input: decoded and only normalised.
    ShapedImage(Vec<u8>),
    /// A split request's crossing tensor, checked against its cut: run through the tail
    /// `served.tails[tail]`, on its own (not batched).
    Split {
        /// Which of the served model's tails.
        tail: usize,
        /// The tensor's shape (the cut's).
        shape: Vec<usize>,
        /// Its quantization step.
        scale: f32,
        /// Its zero point.
        zero_point: i32,
        /// Its u8 values.
        values: Vec<u8>,
    },
}

/// One accepted request.
#[derive(Debug)]
pub struct Job {
    /// Who to answer.
    pub device: DeviceId,
    /// The id to answer with.
    pub request_id: u64,
    /// The variant to run.
    pub served: Arc<Served>,
    /// The input.
    pub input: JobInput,
    /// When the edge received it.
    pub received: Instant,
    /// When its budget runs out, on the edge's clock (receipt + `deadline_ms`), if it has one.
    pub expires_at: Option<Instant>,
}

/// The queue the event loop feeds and the workers take from, shared fairly between devices
/// (see [`crate::queue`]).
#[derive(Debug, Clone)]
pub struct Queue {
    inner: Arc<FairQueue<Job>>,
}

impl Queue {
    /// An open queue of at most `capacity` requests.
    pub fn new(capacity: usize) -> Self {
        Queue {
            inner: Arc::new(FairQueue::new(capacity)),
        }
    }

    /// Queues `job` by the sharing rule; what is handed back must be answered (`busy`).
    pub fn try_push(&self, job: Job) -> Admit<Job> {
        self.inner.push(job.device, job)
    }

    /// Requests waiting now.
    pub fn depth(&self) -> usize {
        self.inner.depth()
    }

    /// Stops taking requests: later pushes are refused, the workers answer what is left
    /// `busy` (without running it), finish what they hold, and exit.
    pub fn close(&self) {
        self.inner.close();
    }
}

/// The worker threads; they exit once the queue is closed and empty.
#[derive(Debug)]
pub struct Pool {
    handles: Vec<JoinHandle<()>>,
    exited: Arc<Notify>,
}

impl Pool {
    /// Starts `workers` threads taking batches of up to `max_batch` from `queue`; answers go
    /// to `answers`.
    pub fn start(
        workers: usize,
        queue: &Queue,
        max_batch: usize,
        answers: Answers,
        stats: Arc<Stats>,
    ) -> std::io::Result<Pool> {
        let mut handles = Vec::with_capacity(workers);
        let exited = Arc::new(Notify::new());
        for i in 0..workers {
            let worker = Worker {
                _exited: ExitSignal(exited.clone()),
                queue: queue.inner.clone(),
                max_batch,
                answers: answers.clone(),
                stats: stats.clone(),
                buf: Vec::new(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("ferry-edge-worker-{i}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Let the ones already started exit.
                    queue.close();
                    return Err(e);
                }
            }
        }
        Ok(Pool { handles, exited })
    }

    /// Notified (a permit is left) each time a worker exits.
    pub fn exited(&self) -> Arc<Notify> {
        self.exited.clone()
    }

    /// True once every worker has exited.
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(JoinHandle::is_finished)
    }

    /// Waits for every worker to exit (after [`Queue::close`]).
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// Notifies when dropped: when its worker exits, even by a panic.
struct ExitSignal(Arc<Notify>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

struct Worker {
    _exited: ExitSignal,
    queue: Arc<FairQueue<Job>>,
    max_batch: usize,
    answers: Answers,
    stats: Arc<Stats>,
    buf: Vec<u8>,
}

fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Worker {
    /// Runs until the queue is closed and empty.
    fn run(mut self) {
        while let Some(taken) = self.queue.take(self.max_batch) {
            if taken.closing {
                for job in taken.items {
                    let wait = job.received.elapsed();
                    Stats::bump(&self.stats.busy);
                    Stats::bump(&self.stats.busy_stopping);
                    self.answer(&job, Status::Busy, "the edge is stopping; run it elsewhere", wait);
                }
                continue;
            }
            self.run_batch(taken.items);
        }
    }

    fn run_batch(&mut self, mut jobs: Vec<Job>) {
        // One model per engine call: take the first job's variant and everything sharing it.
        while !jobs.is_empty() {
            let served = jobs[0].served.clone();
            let (same, rest): (Vec<Job>, Vec<Job>) = jobs
                .into_iter()
                .partition(|j| Arc::ptr_eq(&j.served, &served));
            jobs = rest;
            self.run_model(&served, same);
        }
    }

    fn run_model(&mut self, served: &Served, jobs: Vec<Job>) {
        let started = Instant::now();
        let mut ready: Vec<(Job, Vec<f32>)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let wait = started.duration_since(job.received);
            // The budget runs on this clock from receipt (see crate::clock), never the device's.
            if job.expires_at.is_some_and(|e| started >= e) {
                Stats::bump(&self.stats.expired);
                self.answer_error(&job, Status::DeadlineExceeded, "the request's budget ran out in the edge queue", wait);
                continue;
            }
            match job.input {
                JobInput::Tensor(ref data) => {
                    let data = data.clone();
                    ready.push((job, data));
                }
                JobInput::Image(ref bytes) => {
                    match preprocess::decode_image(bytes, "request image") {
                        Ok(image) => {
                            let tensor = preprocess::image_to_tensor(served.model.manifest(), &image);
                            ready.push((job, tensor));
                        }
                        Err(e) => {
                            self.answer_error(&job, Status::Malformed, &e.to_string(), wait);
                        }
                    }
                }
                JobInput::ShapedImage(ref bytes) => {
                    match ferry_runtime::forms::tensor_of_shaped(served.model.manifest(), bytes, "shaped request image") {
                        Ok(tensor) => ready.push((job, tensor)),
                        Err(e) => self.answer_error(&job, Status::Malformed, &e.to_string(), wait),
                    }
                }
                JobInput::Split { tail, ref shape, scale, zero_point, ref values } => {
                    let compute_start = Instant::now();
                    let result = served.tails[tail].infer(shape, scale, zero_point, values, served.top_k);
                    let compute = compute_start.elapsed();
                    match result {
                        Ok(answer) => self.answer_ok(&job, &answer, started, compute, 1),
                        Err(e) => self.answer_error(&job, Status::Internal, &e.to_string(), wait),
                    }
                }
            }
        }
        if ready.is_empty() {
            return;
        }
        let inputs: Vec<&[f32]> = ready.iter().map(|(_, t)| t.as_slice()).collect();
        let compute_start = Instant::now();
        let result = served.model.infer_batch(&inputs, served.top_k);
        let compute = compute_start.elapsed();
        let batch_size = u16::try_from(ready.len()).unwrap_or(u16::MAX);
        match result {
            Ok(answers) => {
                for ((job, _), answer) in ready.iter().zip(answers) {
                    self.answer_ok(job, &answer, started, compute, batch_size);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = ready.len(), "inference failed");
                for (job, _) in &ready {
                    self.answer_error(job, Status::Internal, &e.to_string(), started.duration_since(job.received));
                }
            }
        }
    }

    /// Answers `job` with its classes.
    fn answer_ok(&mut self, job: &Job, answer: &ferry_runtime::Inference, started: Instant, compute: std::time::Duration, batch_size: u16) {
        let top: Vec<TopK> = answer
            .top
            .iter()
            .map(|c| TopK {
                class: u32::try_from(c.index).unwrap_or(u32::MAX),
                score: c.score,
                label: c.label.clone(),
            })
            .collect();
        let timings = EdgeTimings {
            queue_wait_us: micros(started.duration_since(job.received)),
            compute_us: micros(compute),
            batch_size,
            queue_depth: self.queue_depth(),
        };
        let resp = ResponseRef {
            request_id: job.request_id,
            status: Status::Ok,
            detail: "",
            timings,
            top_k: TopKList::from_owned(&top),
            output: None,
        };
        match encode_response(&resp, &mut self.buf) {
            Ok(_) => {
                Stats::bump(&self.stats.answered_ok);
                tracing::debug!(device = %job.device, request_id = job.request_id, batch = batch_size, "answered ok");
                self.send(job.device);
            }
            Err(e) => {
                self.answer_error(job, Status::Internal, &e.to_string(), started.duration_since(job.received));
            }
        }
    }

    fn queue_depth(&self) -> u32 {
        u32::try_from(self.queue.depth()).unwrap_or(u32::MAX)
    }

    fn answer_error(&mut self, job: &Job, status: Status, detail: &str, wait: std::time::Duration) {
        Stats::bump(&self.stats.answered_error);
        self.answer(job, status, detail, wait);
    }

    /// Answers `job` with a status and no result (the caller counts it).
    fn answer(&mut self, job: &Job, status: Status, detail: &str, wait: std::time::Duration) {
        let timings = EdgeTimings {
            queue_wait_us: micros(wait),
            queue_depth: self.queue_depth(),
            ..EdgeTimings::default()
        };
        encode_error_response(job.request_id, status, detail, timings, &mut self.buf);
        tracing::debug!(device = %job.device, request_id = job.request_id, %status, detail, "error answer");
        self.send(job.device);
    }

    fn send(&mut self, device: DeviceId) {
        let payload = std::mem::take(&mut self.buf);
        // Waits for room: the backpressure that keeps the answer channel bounded.
        self.answers.send_blocking(Outgoing { device, payload });
    }
}
