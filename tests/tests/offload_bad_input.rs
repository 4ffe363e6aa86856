//! Bad envelopes published with `mosquitto_pub` get error answers (or, when nobody can be
//! told, are logged and counted), and the edge keeps serving the next good request.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use ferry_protocol::{
    decode_response, encode_request, ImageFormat, Input, Limits, Request, Status,
    DEFAULT_MAX_MESSAGE_SIZE,
};
use ferry_tests::harness::{self, cert, Broker, Edge, EdgeOptions};
use ferry_tests::raw;
use ferry_transport::mqtt::{tls, TlsVersion};

fn mosquitto_pub(broker: &Broker, topic: &str, payload: &[u8], dir: &std::path::Path, name: &str) {
    let file = dir.join(name);
    std::fs::write(&file, payload).unwrap();
    let out = Command::new(harness::program("mosquitto_pub"))
        .args(broker.client_args("dev-1"))
        .args(["-q", "1", "-t", topic, "-f"])
        .arg(&file)
        .output()
        .expect("run mosquitto_pub");
    assert!(out.status.success(), "mosquitto_pub {name}: {}", String::from_utf8_lossy(&out.stderr));
}

fn encoded(request: &Request) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_request(&request.as_ref(), &mut buf).unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_get_error_answers_and_the_edge_keeps_serving() {
    let broker = Broker::start();
    let edge = Edge::start(&broker, &EdgeOptions::default());
    let dev1 = broker.device("dev-1").await;
    let tls = tls::build(
        &cert("ca.crt"),
        Some((&cert("dev-1.crt"), &cert("dev-1.key"))),
        tls::protocol_versions(TlsVersion::Tls13),
    )
    .unwrap();
    let mut listener = raw::connect(broker.port, Some(tls), "dev-1-listener").await.unwrap();
    listener.subscribe("ferry/dev-1/resp").await;
    let dir = tempfile::tempdir().unwrap();
    let topic = "ferry/dev-1/req/digits";

    let good = harness::image_request(&dev1, "digits", "models/images/digit-7.png");
    let bytes = encoded(&good);
    let mut truncated = harness::image_request(&dev1, "digits", "models/images/digit-7.png");
    truncated.request_id = 1001;
    let truncated = encoded(&truncated)[..bytes.len() / 2].to_vec();
    let mut wrong_version = harness::image_request(&dev1, "digits", "models/images/digit-7.png");
    wrong_version.request_id = 1002;
    let mut wrong_version = encoded(&wrong_version);
    wrong_version[3] = 99;
    let mut oversized = harness::image_request(&dev1, "digits", "models/images/digit-7.png");
    oversized.request_id = 1003;
    oversized.input = Input::Image {
        format: ImageFormat::Png,
        bytes: vec![0u8; DEFAULT_MAX_MESSAGE_SIZE + 1000],
    };
    let oversized = encoded(&oversized);
    let garbage = b"this is not a ferry envelope at all".to_vec();

    mosquitto_pub(&broker, topic, &truncated, dir.path(), "truncated");
    mosquitto_pub(&broker, topic, &garbage, dir.path(), "garbage");
    mosquitto_pub(&broker, topic, &wrong_version, dir.path(), "wrong-version");
    mosquitto_pub(&broker, topic, &oversized, dir.path(), "oversized");
    // A topic the edge cannot attribute (the model level is not a name): logged and counted.
    mosquitto_pub(&broker, "ferry/dev-1/req/not a name", &bytes, dir.path(), "bad-topic");

    let mut answers: HashMap<u64, Status> = HashMap::new();
    for _ in 0..4 {
        let (t, payload) = listener
            .next_message(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("missing error answers, got {answers:?}\nedge:\n{}", edge.proc.stderr.text()));
        assert_eq!(t, "ferry/dev-1/resp");
        let r = decode_response(&payload, &Limits::default()).expect("a well-formed answer");
        answers.insert(r.request_id, r.status);
    }
    assert_eq!(answers.get(&1001), Some(&Status::Malformed), "{answers:?}");
    assert_eq!(answers.get(&1002), Some(&Status::UnsupportedVersion), "{answers:?}");
    assert_eq!(answers.get(&1003), Some(&Status::TooLarge), "{answers:?}");
    // Garbage has no request id: it is answered to the topic's device with id 0.
    assert_eq!(answers.get(&0), Some(&Status::Malformed), "{answers:?}");
    assert!(
        edge.proc.stderr.wait_for(&["dropped a message", "dropped_total=1"], Duration::from_secs(5)),
        "{}",
        edge.proc.stderr.text()
    );

    // Still serving.
    let response = dev1.offload(good, Duration::from_secs(15)).await.unwrap();
    assert_eq!(response.status, Status::Ok);
    // The device saw the four error answers too and dropped them as unknown ids, counted.
    let c = dev1.counters();
    assert_eq!(c.answered, 1);
    assert_eq!(c.dropped_unknown, 4, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_at_once_instead_of_queueing() {
    let broker = Broker::start();
    let _edge = Edge::start(
        &broker,
        &EdgeOptions {
            queue_capacity: 1,
            models: vec!["efficientnet-lite0"],
            ..EdgeOptions::default()
        },
    );
    let device = std::sync::Arc::new(broker.device("dev-1").await);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let device = device.clone();
        tasks.push(tokio::spawn(async move {
            let r = harness::image_request(&device, "efficientnet-lite0", "models/images/cat.jpg");
            device.offload(r, Duration::from_secs(60)).await.map(|r| r.status)
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().unwrap());
    }
    assert!(statuses.contains(&Status::Busy), "{statuses:?}");
    assert!(statuses.contains(&Status::Ok), "{statuses:?}");
    assert!(statuses.iter().all(|s| matches!(s, Status::Ok | Status::Busy)), "{statuses:?}");
}
