//! The executor with the real decider and scheduler state machine, over in-process paths whose
//! behaviour each test sets (answer, busy, fail, slow). The end-to-end tests in `tests/` run it
//! over tract and a real broker and edge; these check that every scheduler outcome is carried
//! out: exactly one answer, from the right path, with the fallback named.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_decide::{AnswerKind, Config, Decider, Fallback, Ran, TargetId};
use ferry_exec::{EdgeLink, ExecError, Executor, LocalResult, LocalRunner};
use ferry_protocol::{
    DeviceId, EdgeTimings, Input, ModelName, Precision, Request, Response, Shape, Status, Tensor, TopK,
};
use ferry_transport::mqtt::OffloadError;
use ferry_transport::LinkError;

const LOCAL: TargetId = TargetId(0);
const EDGE: TargetId = TargetId(1);

fn config(policy: &str) -> Config {
    Config::from_toml(&format!(
        r#"
[decide]
policy = "{policy}"
[thermal]
throttle_point_c = 85.0
set_point_c = 75.0
[[targets]]
kind = "local"
name = "local-fp32"
model = "digits"
precision = "fp32"
prior_ms = 5.0
[[targets]]
kind = "edge"
name = "edge"
timeout_ms = 300
compute_prior_ms = 1.0
"#
    ))
    .unwrap()
}

fn request(id: u64, deadline_ms: Option<u32>) -> Request {
    Request {
        request_id: id,
        device_id: DeviceId::new("dev-1").unwrap(),
        model: ModelName::new("digits").unwrap(),
        precision: Precision::Any,
        deadline_ms,
        sent_at_us: 0,
        input: Input::Tensor(Tensor::from_f32(Shape::new(&[1, 1, 8, 8]).unwrap(), &[0.0; 64]).unwrap()),
    }
}

fn answer(id: u64, label: &str) -> Response {
    Response {
        request_id: id,
        status: Status::Ok,
        detail: String::new(),
        timings: EdgeTimings { queue_wait_us: 10, compute_us: 500, batch_size: 1, queue_depth: 0 },
        top_k: vec![TopK { class: 7, score: 0.9, label: label.to_string() }],
        output: None,
    }
}

struct Local {
    fail: bool,
    delay: Duration,
    runs: AtomicU32,
    /// Stops (in 1 ms steps) when the executor cancels the run, as the tract runner does;
    /// otherwise runs to the end like an engine that cannot be interrupted.
    stoppable: bool,
    stopped: AtomicU32,
}

impl Local {
    fn new(fail: bool, delay: Duration) -> Local {
        Local { fail, delay, runs: AtomicU32::new(0), stoppable: false, stopped: AtomicU32::new(0) }
    }
}

impl LocalRunner for Local {
    async fn run(&self, _target: TargetId, request: Arc<Request>, cancel: Arc<AtomicBool>) -> Result<LocalResult, String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let start = std::time::Instant::now();
        while start.elapsed() < self.delay {
            if self.stoppable && cancel.load(Ordering::Acquire) {
                self.stopped.fetch_add(1, Ordering::SeqCst);
                return Err("cancelled".to_string());
            }
            tokio::time::sleep(Duration::from_millis(1).min(self.delay)).await;
        }
        if self.fail {
            return Err("engine broke".to_string());
        }
        Ok(LocalResult { response: answer(request.request_id, "local"), compute_us: self.delay.as_micros() as u32 })
    }
}

#[derive(Clone, Copy)]
enum Edge {
    Answers,
    Busy,
    Fails,
    Slow(Duration),
}

struct EdgePath {
    how: Edge,
    sent: AtomicU32,
}

impl EdgeLink for EdgePath {
    async fn offload(&self, request: Request, timeout: Duration) -> Result<Response, LinkError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        match self.how {
            Edge::Answers => Ok(answer(request.request_id, "edge")),
            Edge::Busy => Ok(Response { status: Status::Busy, top_k: vec![], ..answer(request.request_id, "") }),
            Edge::Fails => Err(OffloadError::Disconnected("broker gone".to_string()).into()),
            Edge::Slow(d) => {
                if d > timeout {
                    tokio::time::sleep(timeout).await;
                    return Err(OffloadError::Timeout(timeout).into());
                }
                tokio::time::sleep(d).await;
                Ok(answer(request.request_id, "edge"))
            }
        }
    }
}

fn executor(policy: &str, local_fails: bool, edge: Edge) -> (Executor<Local, EdgePath>, Arc<Local>, Arc<EdgePath>) {
    let local = Arc::new(Local::new(local_fails, Duration::from_millis(5)));
    let edge = Arc::new(EdgePath { how: edge, sent: AtomicU32::new(0) });
    let decider = Decider::new(&config(policy)).unwrap();
    (Executor::new(decider, local.clone(), vec![("edge".to_string(), edge.clone())]), local, edge)
}

#[tokio::test]
async fn always_local_runs_locally_and_answers_once() {
    let (exec, local, edge) = executor("always-local", false, Edge::Answers);
    let out = exec.submit(request(1, None)).await.unwrap();
    assert_eq!(out.answer.ran, Ran::Local(LOCAL));
    assert!(out.answer.ok);
    assert_eq!(out.response.top_k[0].label, "local");
    assert_eq!(out.ran_on, "local-fp32");
    assert_eq!((local.runs.load(Ordering::SeqCst), edge.sent.load(Ordering::SeqCst)), (1, 0));
}

#[tokio::test]
async fn always_offload_runs_on_the_edge() {
    let (exec, local, _edge) = executor("always-offload", false, Edge::Answers);
    let out = exec.submit(request(2, None)).await.unwrap();
    assert_eq!(out.answer.ran, Ran::Edge(EDGE));
    assert_eq!(out.response.top_k[0].label, "edge");
    assert_eq!(out.response.request_id, 2);
    assert_eq!(local.runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_busy_edge_falls_back_to_local_and_says_why() {
    let (exec, local, _edge) = executor("always-offload", false, Edge::Busy);
    let out = exec.submit(request(3, Some(1000))).await.unwrap();
    assert_eq!(out.answer.ran, Ran::Local(LOCAL));
    assert!(out.answer.ok);
    assert_eq!(out.answer.fallback, Some(Fallback::EdgeBusy));
    assert_eq!(out.response.top_k[0].label, "local");
    assert_eq!(local.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_edge_falls_back_to_local() {
    let (exec, _local, _edge) = executor("always-offload", false, Edge::Fails);
    let out = exec.submit(request(4, Some(1000))).await.unwrap();
    assert_eq!(out.answer.ran, Ran::Local(LOCAL));
    assert_eq!(out.answer.fallback, Some(Fallback::EdgeError));
    assert!(out.answer.ok);
}

#[tokio::test]
async fn an_edge_slower_than_the_deadline_is_overtaken_by_local() {
    let (exec, _local, edge) = executor("always-offload", false, Edge::Slow(Duration::from_millis(250)));
    let out = exec.submit(request(5, Some(60))).await.unwrap();
    assert_eq!(out.answer.ran, Ran::Local(LOCAL), "{:?}", out.answer);
    assert!(out.answer.ok);
    assert!(matches!(out.answer.fallback, Some(Fallback::DeadlineAtRisk | Fallback::EdgeTimeout)), "{:?}", out.answer);
    assert_eq!(edge.sent.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn when_every_path_fails_the_request_still_gets_one_error_answer() {
    let (exec, _local, _edge) = executor("always-offload", true, Edge::Fails);
    let out = exec.submit(request(6, Some(1000))).await.unwrap();
    assert!(!out.answer.ok);
    assert_eq!(out.response.request_id, 6);
    assert_ne!(out.response.status, Status::Ok);
    assert!(!out.response.detail.is_empty(), "the error answer says why");
}

#[tokio::test]
async fn many_concurrent_requests_each_get_exactly_one_answer() {
    let (exec, _local, _edge) = executor("adaptive", false, Edge::Slow(Duration::from_millis(3)));
    let exec = Arc::new(exec);
    let handles: Vec<_> = (0..40u64)
        .map(|i| {
            let exec = exec.clone();
            tokio::spawn(async move { exec.submit(request(100 + i, Some(if i % 3 == 0 { 20 } else { 500 }))).await })
        })
        .collect();
    let (mut ids, mut ok) = (Vec::new(), 0);
    for h in handles {
        let out = h.await.unwrap().unwrap();
        let id = out.response.request_id;
        if (id - 100) % 3 == 0 {
            // 20 ms is hard (+ 20 ms of grace) and local takes 40 ms: a result, or an honest
            // deadline_exceeded no later than 40 ms (plus scheduling slack).
            let kinds = [AnswerKind::Result, AnswerKind::DeadlineExceeded, AnswerKind::Busy];
            assert!(kinds.contains(&out.answer.kind), "{:?}", out.answer);
            assert!(out.answer.latency_us < 40_000 + 15_000, "{:?}", out.answer);
        } else {
            // 40 at once are more than the edge's in-flight limit (8) plus the local runner and
            // its queue (1 + 8) take: the rest are answered busy, at once (the tight ones too).
            assert!(out.answer.ok || (out.answer.kind == AnswerKind::Busy && out.answer.latency_us < 5_000), "{:?}", out.answer);
            ok += usize::from(out.answer.ok);
        }
        ids.push(id);
    }
    assert!(ok > 0, "{ok}");
    ids.sort();
    assert_eq!(ids, (100..140).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_model_no_target_serves_is_refused_before_deciding() {
    let (exec, _local, _edge) = executor("adaptive", false, Edge::Answers);
    let mut r = request(7, None);
    r.model = ModelName::new("resnet").unwrap();
    assert!(matches!(exec.submit(r).await, Err(ExecError::UnknownModel(m)) if m == "resnet"));
}

#[tokio::test]
async fn a_local_fallback_still_queued_when_the_edge_answers_is_dropped_not_run() {
    // The first request's fallback takes the board for 400 ms; the next two requests' fallbacks
    // queue behind it, their edge answers first (50 ms each), and they must never run (nor
    // stay counted as waiting).
    let local = Arc::new(Local::new(false, Duration::from_millis(400)));
    let edge = Arc::new(EdgePath { how: Edge::Slow(Duration::from_millis(50)), sent: AtomicU32::new(0) });
    let exec = Executor::new(Decider::new(&config("always-offload")).unwrap(), local.clone(), vec![("edge".to_string(), edge.clone())]);
    for id in 0..3 {
        let out = exec.submit(request(300 + id, Some(40))).await.unwrap();
        assert_eq!(out.answer.ran, Ran::Edge(EDGE), "{:?}", out.answer);
        assert_eq!(out.answer.fallback, Some(Fallback::DeadlineAtRisk), "the local fallback was started: {:?}", out.answer);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(local.runs.load(Ordering::SeqCst), 1, "only the first fallback found the board free");
    let queue = exec.with_decider(|d| d.estimators().local_queue);
    assert_eq!((queue.waiting, queue.running), (0, None), "dropped runs left the queue estimate");
}

#[tokio::test]
async fn a_running_local_fallback_is_stopped_when_the_edge_answers_first() {
    // The same requests with a runner that stops when asked (as tract does between nodes):
    // each fallback starts, the edge answers at 50 ms, the run is stopped, and the board is
    // free for the next request's fallback instead of busy for 400 ms.
    let local = Arc::new(Local { stoppable: true, ..Local::new(false, Duration::from_millis(400)) });
    let edge = Arc::new(EdgePath { how: Edge::Slow(Duration::from_millis(50)), sent: AtomicU32::new(0) });
    let exec = Executor::new(Decider::new(&config("always-offload")).unwrap(), local.clone(), vec![("edge".to_string(), edge.clone())]);
    for id in 0..3 {
        let out = exec.submit(request(400 + id, Some(40))).await.unwrap();
        assert_eq!(out.answer.ran, Ran::Edge(EDGE), "{:?}", out.answer);
        assert_eq!(out.answer.fallback, Some(Fallback::DeadlineAtRisk), "{:?}", out.answer);
        // Wait for the stopped run to report back before the next request.
        for _ in 0..200 {
            if local.stopped.load(Ordering::SeqCst) == id as u32 + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(local.runs.load(Ordering::SeqCst), 3, "every fallback found the board free");
    assert_eq!(local.stopped.load(Ordering::SeqCst), 3, "and every one was stopped");
    let queue = exec.with_decider(|d| d.estimators().local_queue);
    assert_eq!((queue.waiting, queue.running), (0, None));
    // A stopped run is a censored sample: it ran until the edge answered (~50 ms of a 400 ms
    // run), so the compute takes at least that. The 5 ms prior rises towards it, never above
    // what the runs had shown when they stopped.
    let base = exec.with_decider(|d| d.estimators().local(LOCAL).base().mean());
    assert!(base > 5_000.0 && base < 400_000.0, "{base}");
}
