//! The bounded queue and the inference workers (plain threads: tract is synchronous and
//! CPU-bound). A worker takes one job, then whatever else is already queued, up to
//! `max_batch`, and runs each model's share as one batch: dynamic batching that never waits
//! for a batch to fill.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ferry_protocol::{
    encode_error_response, encode_response, DeviceId, EdgeTimings, ResponseRef, Status, TopK,
    TopKList,
};
use ferry_runtime::preprocess;
use tokio::sync::mpsc::UnboundedSender;

use crate::models::Served;
use crate::stats::Stats;

/// A request's input, ready for a worker.
#[derive(Debug)]
pub enum JobInput {
    /// Encoded image bytes, decoded by the worker.
    Image(Vec<u8>),
    /// A raw input tensor, already checked against the model's shape.
    Tensor(Vec<f32>),
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
    /// The device's absolute deadline, µs since the epoch, if any.
    pub deadline_at_us: Option<u64>,
}

/// An encoded response for a device.
#[derive(Debug)]
pub struct Outgoing {
    /// The device whose response topic it goes to.
    pub device: DeviceId,
    /// The response envelope.
    pub payload: Vec<u8>,
}

/// The sending side of the queue.
#[derive(Debug, Clone)]
pub struct Queue {
    tx: SyncSender<Job>,
    depth: Arc<AtomicUsize>,
}

impl Queue {
    /// Enqueues `job`, or hands it back at once when the queue is full.
    pub fn try_push(&self, job: Job) -> Result<(), Job> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                Err(job)
            }
        }
    }

    /// Requests waiting now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

/// The workers; dropping the last [`Queue`] stops them once the queue is drained.
#[derive(Debug)]
pub struct Pool {
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `workers` threads on a queue of `capacity`; answers go to `out`.
    pub fn start(
        workers: usize,
        capacity: usize,
        max_batch: usize,
        out: UnboundedSender<Outgoing>,
        stats: Arc<Stats>,
    ) -> std::io::Result<(Queue, Pool)> {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        let depth = Arc::new(AtomicUsize::new(0));
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let worker = Worker {
                rx: rx.clone(),
                depth: depth.clone(),
                max_batch,
                out: out.clone(),
                stats: stats.clone(),
                buf: Vec::new(),
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("ferry-edge-worker-{i}"))
                    .spawn(move || worker.run())?,
            );
        }
        Ok((Queue { tx, depth }, Pool { handles }))
    }

    /// Waits for every worker to finish (after the queue's senders are gone).
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

struct Worker {
    rx: Arc<Mutex<Receiver<Job>>>,
    depth: Arc<AtomicUsize>,
    max_batch: usize,
    out: UnboundedSender<Outgoing>,
    stats: Arc<Stats>,
    buf: Vec<u8>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Worker {
    /// Runs until every sender is gone and the queue is empty.
    fn run(mut self) {
        loop {
            let batch = {
                let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
                let Ok(first) = rx.recv() else { return };
                let mut batch = vec![first];
                while batch.len() < self.max_batch {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                batch
            };
            self.depth.fetch_sub(batch.len(), Ordering::Relaxed);
            self.run_batch(batch);
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
        let now = now_us();
        let mut ready: Vec<(Job, Vec<f32>)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let wait = started.duration_since(job.received);
            if job.deadline_at_us.is_some_and(|d| d < now) {
                self.answer_error(&job, Status::DeadlineExceeded, "deadline passed in the queue", wait);
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
            }
            Err(e) => {
                tracing::error!(error = %e, batch = ready.len(), "inference failed");
                for (job, _) in &ready {
                    self.answer_error(job, Status::Internal, &e.to_string(), started.duration_since(job.received));
                }
            }
        }
    }

    fn queue_depth(&self) -> u32 {
        u32::try_from(self.depth.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    fn answer_error(&mut self, job: &Job, status: Status, detail: &str, wait: std::time::Duration) {
        let timings = EdgeTimings {
            queue_wait_us: micros(wait),
            queue_depth: self.queue_depth(),
            ..EdgeTimings::default()
        };
        encode_error_response(job.request_id, status, detail, timings, &mut self.buf);
        Stats::bump(&self.stats.answered_error);
        tracing::debug!(device = %job.device, request_id = job.request_id, %status, detail, "error answer");
        self.send(job.device);
    }

    fn send(&mut self, device: DeviceId) {
        let payload = std::mem::take(&mut self.buf);
        // The receiver is gone only while shutting down; the answer cannot go anywhere then.
        let _ = self.out.send(Outgoing { device, payload });
    }
}
