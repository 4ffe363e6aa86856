//! Issue 14, defect 7 (edge side): the edge judged a request's deadline by the device's clock
//! (`sent_at + deadline` against its own wall clock), so a board without RTC or NTP, hours
//! behind, had every deadline-bearing offload refused. Now the budget runs on the edge's own
//! clock from receipt; a device clock hours off either way is served (and the skew reported),
//! while a request that really waits longer than its budget in the edge queue still expires.

use std::time::Duration;

use ferry_protocol::Status;
use ferry_tests::fleet::{self, FleetDevice};
use ferry_tests::harness::{now_us, Broker, Edge, EdgeOptions};

const HOUR_US: u64 = 3_600_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_clock_hours_off_is_served_and_a_request_outwaiting_its_budget_expires() {
    let broker = Broker::start();
    let mut edge = Edge::start(
        &broker,
        &EdgeOptions {
            models: vec!["digits", "efficientnet-lite0"],
            queue_capacity: 64,
            workers: 1,
            ..EdgeOptions::default()
        },
    );
    let mut dev = FleetDevice::connect(&broker, "dev-1", "clock").await;
    let digit = fleet::image("models/images/digit-7.png");

    // The queue is empty: a 500 ms budget is plenty, whatever the device's clock says.
    for (id, sent_at_us, clock) in [
        (1, now_us() - 3 * HOUR_US, "3 h behind"),
        (2, now_us() + 3 * HOUR_US, "3 h ahead"),
        (3, now_us(), "right"),
    ] {
        dev.send(&fleet::image_request(
            "dev-1",
            id,
            "digits",
            &digit,
            Some(500),
            sent_at_us,
        ))
        .await;
        let r = dev
            .next_response(Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("no answer\nedge:\n{}", edge.proc.stderr.text()));
        assert_eq!(r.request_id, id);
        assert_eq!(
            r.status,
            Status::Ok,
            "device clock {clock}, 500 ms budget, empty queue: {r:?}"
        );
    }

    // A 20 ms budget behind 24 full-size inferences: it really waits longer than that.
    let cat = fleet::image("models/images/cat.jpg");
    for id in 100..124 {
        dev.send(&fleet::image_request(
            "dev-1",
            id,
            "efficientnet-lite0",
            &cat,
            None,
            now_us(),
        ))
        .await;
    }
    dev.send(&fleet::image_request(
        "dev-1",
        200,
        "digits",
        &digit,
        Some(20),
        now_us(),
    ))
    .await;
    let got = dev
        .collect(Duration::from_secs(5), Duration::from_secs(120))
        .await;
    assert_eq!(got.len(), 25, "{got:?}");
    let late = got
        .iter()
        .find(|r| r.request_id == 200)
        .expect("an answer to 200");
    assert_eq!(late.status, Status::DeadlineExceeded, "{late:?}");
    assert!(
        late.timings.queue_wait_us >= 20_000,
        "expired after {} µs in the queue, before its 20 ms budget ran out",
        late.timings.queue_wait_us
    );
    assert!(
        got.iter()
            .filter(|r| r.request_id != 200)
            .all(|r| r.status == Status::Ok),
        "{got:?}"
    );

    edge.proc.terminate();
    let log = edge.proc.stderr.text();
    assert!(
        log.contains("device clock differs from the edge's"),
        "no skew warning:\n{log}"
    );
    let stopped = log
        .lines()
        .find(|l| l.contains("stopped") && l.contains("StatsSnapshot"))
        .unwrap_or_else(|| panic!("no final counters:\n{log}"));
    assert!(
        stopped.contains("clock_skewed: 2,") && stopped.contains("expired: 1,"),
        "{stopped}"
    );
    // The largest skew is about 3 h (10 800 000 ms), one-way delay included.
    let max: u64 = stopped
        .split("clock_skew_max_ms: ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{stopped}"));
    assert!((10_799_000..=10_801_000).contains(&max), "{stopped}");
}
