//! When the broker goes away, requests fail fast as `Disconnected` (the scheduler runs them
//! locally), and once it is back the device and the edge reconnect, re-subscribe and serve.

use std::time::Duration;

use ferry_protocol::Status;
use ferry_transport::mqtt::{LinkState, OffloadError};
use ferry_tests::harness::{self, Broker, Edge, EdgeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_and_edge_reconnect_after_a_broker_restart() {
    let mut broker = Broker::start();
    let edge = Edge::start(&broker, &EdgeOptions::default());
    let device = broker.device("dev-1").await;
    let r = harness::image_request(&device, "digits", "models/images/digit-7.png");
    assert_eq!(device.offload(r, Duration::from_secs(10)).await.unwrap().status, Status::Ok);

    broker.proc.kill();
    // Bounded wait for the device to notice (keep-alive is not needed: the socket closes).
    let noticed = (0..200).any(|_| {
        let down = device.link_state() != LinkState::Ready;
        if !down {
            std::thread::sleep(Duration::from_millis(20));
        }
        down
    });
    assert!(noticed, "the device did not notice the broker going");
    let r = harness::image_request(&device, "digits", "models/images/digit-7.png");
    match device.offload(r, Duration::from_secs(5)).await {
        Err(OffloadError::Disconnected(_)) | Err(OffloadError::Refused(_)) => {}
        other => panic!("expected a fast Disconnected, got {other:?}"),
    }

    let readies = edge.proc.stderr.count(&["ready for requests"]);
    broker.restart();
    device.wait_ready(Duration::from_secs(15)).await.unwrap();
    assert!(
        edge.proc.stderr.wait_for_count(&["ready for requests"], readies + 1, Duration::from_secs(15)),
        "the edge did not re-subscribe:\n{}",
        edge.proc.stderr.text()
    );
    let r = harness::image_request(&device, "digits", "models/images/digit-3.png");
    let response = device.offload(r, Duration::from_secs(10)).await.unwrap();
    assert_eq!(response.status, Status::Ok);
    assert!(device.counters().connections >= 2);
}
