//! Issue 14, defect 4 (edge side): SIGTERM with requests queued and running. The edge used to
//! abort its publisher first and then drain its queue into answers that could never be sent.
//! Now each request still gets exactly one response envelope on the device's response
//! topic — a result, or `busy` (the device runs it locally at once) — published and
//! acknowledged before the edge disconnects, and the edge exits by itself.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_protocol::Status;
use ferry_tests::fleet::{self, FleetDevice};
use ferry_tests::harness::{now_us, Broker, Edge, EdgeOptions};

const MODEL: &str = "efficientnet-lite0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_requests_in_flight_answers_each_exactly_once_then_exits() {
    let broker = Broker::start();
    let mut edge = Edge::start(
        &broker,
        &EdgeOptions {
            models: vec![MODEL],
            queue_capacity: 64,
            workers: 1,
            ..EdgeOptions::default()
        },
    );
    let mut dev = FleetDevice::connect(&broker, "dev-1", "stop").await;
    let image = fleet::image("models/images/cat.jpg");
    let sent: Vec<u64> = (1..=40).collect();
    for &id in &sent {
        dev.send(&fleet::image_request(
            "dev-1",
            id,
            MODEL,
            &image,
            None,
            now_us(),
        ))
        .await;
    }
    // The first result means the rest are queued or running now.
    let first = dev
        .next_response(Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no first answer\nedge:\n{}", edge.proc.stderr.text()));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(edge.proc.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();

    let mut got = vec![first];
    got.extend(
        dev.collect(Duration::from_secs(3), Duration::from_secs(30))
            .await,
    );
    let mut exited = false;
    let mut exited_after = Duration::ZERO;
    for _ in 0..500 {
        if !edge.proc.is_running() {
            exited = true;
            exited_after = signalled.elapsed();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = edge.proc.stderr.text();
    assert!(
        exited,
        "the edge did not exit within 10 s of SIGTERM:\n{log}"
    );

    let mut answers: BTreeMap<u64, Vec<Status>> = BTreeMap::new();
    for r in &got {
        answers.entry(r.request_id).or_default().push(r.status);
    }
    for id in &sent {
        let statuses = answers.get(id).cloned().unwrap_or_default();
        assert_eq!(
            statuses.len(),
            1,
            "request {id}: {statuses:?} (want exactly one answer)\nall: {answers:?}\nedge:\n{log}"
        );
        assert!(
            matches!(statuses[0], Status::Ok | Status::Busy),
            "request {id}: {statuses:?}"
        );
    }
    assert_eq!(
        answers.len(),
        sent.len(),
        "answers to requests never sent: {answers:?}"
    );
    let busy = got.iter().filter(|r| r.status == Status::Busy).count();
    let ok = got.len() - busy;
    assert!(
        busy > 0,
        "nothing was still queued at SIGTERM: the test did not test the stop ({ok} ok)"
    );
    for r in got.iter().filter(|r| r.status == Status::Busy) {
        assert!(
            r.detail.contains("stopping"),
            "a busy answer that does not say why: {r:?}"
        );
    }
    let stopped = log
        .lines()
        .find(|l| l.contains("stopped") && l.contains("StatsSnapshot"))
        .unwrap_or_else(|| panic!("no final counters:\n{log}"));
    assert!(stopped.contains("answers_lost: 0,"), "{stopped}");
    assert!(
        stopped.contains(&format!("busy_stopping: {busy},")),
        "{stopped}"
    );
    assert!(log.contains("unsubscribed: no new requests"), "{log}");
    eprintln!(
        "stop: {ok} ok, {busy} busy; the edge exited {} ms after SIGTERM",
        exited_after.as_millis()
    );
}
