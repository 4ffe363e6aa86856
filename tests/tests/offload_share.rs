//! Two edge servers in one shared-subscription group split the work; when one is killed,
//! the other answers everything sent after the broker has noticed, and what the dead one
//! held ends in the device's timeout (its fallback), never in a wrong answer.

use std::time::Duration;

use ferry_protocol::Status;
use ferry_transport::mqtt::OffloadError;
use ferry_tests::harness::{self, Broker, Edge, EdgeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_edges_share_the_work_and_one_survives_the_other_being_killed() {
    let broker = Broker::start();
    let mut edge_a = Edge::start(&broker, &EdgeOptions { client_id: "edge-a".into(), ..EdgeOptions::default() });
    let edge_b = Edge::start(&broker, &EdgeOptions { client_id: "edge-b".into(), ..EdgeOptions::default() });
    let device = broker.device("dev-1").await;

    for _ in 0..12 {
        let r = harness::image_request(&device, "digits", "models/images/digit-7.png");
        let response = device.offload(r, Duration::from_secs(15)).await.unwrap();
        assert_eq!(response.status, Status::Ok);
    }
    let (a, b) = (edge_a.proc.stderr.count(&["answered ok"]), edge_b.proc.stderr.count(&["answered ok"]));
    assert_eq!(a + b, 12, "A:\n{}\nB:\n{}", edge_a.proc.stderr.text(), edge_b.proc.stderr.text());
    assert!(a > 0 && b > 0, "both edges should get work: A {a}, B {b}");

    // Kill A while requests are in flight.
    let device = std::sync::Arc::new(device);
    let mut in_flight = Vec::new();
    for _ in 0..6 {
        let device = device.clone();
        in_flight.push(tokio::spawn(async move {
            let r = harness::image_request(&device, "digits", "models/images/digit-3.png");
            device.offload(r, Duration::from_secs(3)).await
        }));
    }
    edge_a.proc.kill();
    for t in in_flight {
        match t.await.unwrap() {
            Ok(r) => assert_eq!(r.status, Status::Ok),
            // Lost with A: the device's timeout covers it (the scheduler then runs it locally).
            Err(OffloadError::Timeout(_)) => {}
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    let noticed = (0..250).any(|_| {
        let gone = broker.proc.stderr.count(&["edge-a", "closed"]) + broker.proc.stderr.count(&["edge-a", "disconnect"]);
        gone > 0 || {
            std::thread::sleep(Duration::from_millis(20));
            false
        }
    });
    assert!(noticed, "the broker did not notice edge-a going:\n{}", broker.proc.stderr.text());
    let before_b = edge_b.proc.stderr.count(&["answered ok"]);
    for _ in 0..10 {
        let r = harness::image_request(&device, "digits", "models/images/digit-7.png");
        let response = device
            .offload(r, Duration::from_secs(15))
            .await
            .unwrap_or_else(|e| panic!("B should answer everything now: {e}\n{}", broker.proc.stderr.text()));
        assert_eq!(response.status, Status::Ok);
    }
    assert_eq!(edge_b.proc.stderr.count(&["answered ok"]) - before_b, 10);
}
