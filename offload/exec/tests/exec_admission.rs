//! Admission in the executor, over in-process paths: a dropped request withdraws its queued
//! run and stops its running one, a full local queue answers `busy`, a newer frame of a stream
//! supersedes a queued older one, and a local-only request never reaches the edge.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_decide::{AnswerKind, Config, Constraints, Decider, Placement, Ran, TargetId};
use ferry_exec::{EdgeLink, Executor, LocalResult, LocalRunner, SubmitOptions};
use ferry_protocol::{DeviceId, EdgeTimings, Input, ModelName, Precision, Request, Response, Shape, Status, Tensor};
use ferry_transport::LinkError;

fn config(extra: &str) -> Config {
    Config::from_toml(&format!(
        r#"
[decide]
policy = "always-local"
{extra}
[thermal]
throttle_point_c = 85.0
set_point_c = 75.0
[[targets]]
kind = "local"
name = "local-fp32"
model = "digits"
precision = "fp32"
prior_ms = 100.0
[[targets]]
kind = "edge"
name = "edge"
timeout_ms = 300
compute_prior_ms = 1.0
"#
    ))
    .unwrap()
}

fn request(id: u64) -> Request {
    Request {
        request_id: id,
        device_id: DeviceId::new("dev-1").unwrap(),
        model: ModelName::new("digits").unwrap(),
        precision: Precision::Any,
        deadline_ms: None,
        sent_at_us: 0,
        input: Input::Tensor(Tensor::from_f32(Shape::new(&[1, 1, 8, 8]).unwrap(), &[0.0; 64]).unwrap()),
    }
}

fn ok(id: u64) -> Response {
    Response { request_id: id, status: Status::Ok, detail: String::new(), timings: EdgeTimings::default(), top_k: vec![], output: None }
}

/// 100 ms per run, stopping (in 1 ms steps) when cancelled, as the tract runner does.
#[derive(Default)]
struct Slow {
    runs: AtomicU32,
    stopped: AtomicU32,
}

impl LocalRunner for Slow {
    async fn run(&self, _t: TargetId, request: Arc<Request>, cancel: Arc<AtomicBool>) -> Result<LocalResult, String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            if cancel.load(Ordering::Acquire) {
                self.stopped.fetch_add(1, Ordering::SeqCst);
                return Err("cancelled".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(LocalResult { response: ok(request.request_id), compute_us: 100_000 })
    }
}

#[derive(Default)]
struct Edge {
    sent: AtomicU32,
}

impl EdgeLink for Edge {
    async fn offload(&self, request: Request, _timeout: Duration) -> Result<Response, LinkError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(ok(request.request_id))
    }
}

fn executor(extra: &str) -> (Arc<Executor<Slow, Edge>>, Arc<Slow>, Arc<Edge>) {
    let (local, edge) = (Arc::new(Slow::default()), Arc::new(Edge::default()));
    let exec = Executor::new(Decider::new(&config(extra)).unwrap(), local.clone(), vec![("edge".into(), edge.clone())]);
    (Arc::new(exec), local, edge)
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn dropping_a_request_stops_its_running_run_and_withdraws_its_queued_ones() {
    let (exec, local, _) = executor("");
    let tasks: Vec<_> = (0..3).map(|i| {
        let exec = exec.clone();
        tokio::spawn(async move { exec.submit(request(i)).await })
    }).collect();
    until("one running, two queued", || local.runs.load(Ordering::SeqCst) == 1 && exec.local_waiting() == 2).await;
    for t in &tasks {
        t.abort();
    }
    until("the running one stopped", || local.stopped.load(Ordering::SeqCst) == 1).await;
    until("the queued ones withdrawn", || exec.counters().local_withdrawn.load(Ordering::SeqCst) == 2).await;
    assert_eq!(exec.counters().cancelled.load(Ordering::SeqCst), 3);
    // The board is free at once: the next request runs in about one run's time.
    let start = Instant::now();
    let out = exec.submit(request(9)).await.unwrap();
    assert!(out.answer.ok);
    assert!(start.elapsed() < Duration::from_millis(190), "{:?}", start.elapsed());
    assert_eq!(local.runs.load(Ordering::SeqCst), 2, "the withdrawn runs never ran");
    let q = exec.with_decider(|d| d.estimators().local_queue);
    assert_eq!((q.waiting, q.running), (0, None));
}

#[tokio::test]
async fn a_local_only_request_behind_a_full_queue_is_answered_busy_at_once() {
    let (exec, _, edge) = executor("local_queue_max = 1");
    let local_only = SubmitOptions { constraints: Constraints { placement: Placement::LocalOnly, ..Constraints::default() }, ..SubmitOptions::default() };
    let mut tasks = Vec::new();
    for i in 0..2 {
        let (e, o) = (exec.clone(), local_only.clone());
        tasks.push(tokio::spawn(async move { e.submit_with(request(i), o).await }));
        until("queued", || exec.with_decider(|d| d.estimators().local_queue.waiting as u64 + u64::from(d.estimators().local_queue.running.is_some())) == i + 1).await;
    }
    let start = Instant::now();
    let out = exec.submit_with(request(5), local_only).await.unwrap();
    assert_eq!(out.answer.kind, AnswerKind::Busy, "{:?}", out.answer);
    assert!(start.elapsed() < Duration::from_millis(50), "{:?}", start.elapsed());
    for t in tasks {
        assert!(t.await.unwrap().unwrap().answer.ok);
    }
    assert_eq!(edge.sent.load(Ordering::SeqCst), 0, "local-only never left the board");
}

#[tokio::test]
async fn a_newer_frame_supersedes_a_queued_older_one_of_the_same_stream() {
    let (exec, local, _) = executor("freshest = true");
    let frame = |id: u64, stream: &str| {
        let exec = exec.clone();
        let o = SubmitOptions { stream: Some(stream.to_string()), ..SubmitOptions::default() };
        tokio::spawn(async move { exec.submit_with(request(id), o).await.unwrap() })
    };
    let running = frame(1, "cam");
    until("frame 1 running", || local.runs.load(Ordering::SeqCst) == 1).await;
    let older = frame(2, "cam");
    let other = frame(3, "other-cam");
    until("frames 2 and 3 queued", || exec.local_waiting() == 2).await;
    let newest = frame(4, "cam");
    let older = older.await.unwrap();
    assert_eq!(older.answer.kind, AnswerKind::Superseded, "{:?}", older.answer);
    // Frame 1 had started: it finishes. Frame 3 is another stream. Frame 4 runs.
    assert!(running.await.unwrap().answer.ok);
    assert!(other.await.unwrap().answer.ok);
    assert!(newest.await.unwrap().answer.ok);
    assert_eq!(local.runs.load(Ordering::SeqCst), 3);
    assert!(matches!(older.answer.ran, Ran::Local(_)));
}
