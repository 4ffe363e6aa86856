//! A device offloads images over MQTT/TLS 1.3 through a real Mosquitto to a real ferry-edge
//! and gets the same top-1 class as local FP32 inference.

use std::process::Command;
use std::time::Duration;

use ferry_protocol::Status;
use ferry_tests::harness::{self, Broker, Edge, EdgeOptions};

const DIGITS: [&str; 2] = ["models/images/digit-7.png", "models/images/digit-3.png"];
const PHOTOS: [&str; 3] = ["models/images/cat.jpg", "models/images/espresso.jpg", "models/images/camera.jpg"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloaded_digits_and_efficientnet_match_local_fp32_top1() {
    let broker = Broker::start();
    let _edge = Edge::start(
        &broker,
        &EdgeOptions {
            models: vec!["digits", "efficientnet-lite0"],
            ..EdgeOptions::default()
        },
    );
    let device = broker.device("dev-1").await;
    for (model, images) in [("digits", &DIGITS[..]), ("efficientnet-lite0", &PHOTOS[..])] {
        for image in images {
            let request = harness::image_request(&device, model, image);
            let id = request.request_id;
            let response = device
                .offload(request, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("{model} {image}: {e}"));
            assert_eq!(response.request_id, id);
            assert_eq!(response.status, Status::Ok, "{}", response.detail);
            assert!(!response.top_k.is_empty());
            assert!(response.timings.batch_size >= 1);
            let local = harness::local_top1(model, image);
            assert_eq!(
                response.top_k[0].class as usize, local,
                "{model} on {image}: edge says {:?}, local FP32 says class {local}",
                response.top_k[0]
            );
        }
    }
    let c = device.counters();
    assert_eq!((c.sent, c.answered, c.timeouts), (5, 5, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_the_edge_does_not_serve_is_answered_unknown_model() {
    let broker = Broker::start();
    let _edge = Edge::start(&broker, &EdgeOptions::default());
    let device = broker.device("dev-2").await;
    let request = harness::image_request(&device, "no-such-model", DIGITS[0]);
    let response = device.offload(request, Duration::from_secs(10)).await.unwrap();
    assert_eq!(response.status, Status::UnknownModel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferry_offload_cli_prints_the_answer_and_its_timings() {
    let broker = Broker::start();
    let _edge = Edge::start(&broker, &EdgeOptions::default());
    let c = |name: &str| harness::cert(name).display().to_string();
    let out = tokio::task::spawn_blocking({
        let url = broker.url();
        let (ca, crt, key) = (c("ca.crt"), c("dev-1.crt"), c("dev-1.key"));
        move || {
            Command::new(harness::workspace_binary("ferry"))
                .args(["offload", "--broker", &url, "--model", "digits"])
                .args(["--ca", &ca, "--cert", &crt, "--key", &key, "--device", "dev-1"])
                .arg(harness::repo_root().join(DIGITS[0]))
                .output()
                .expect("run ferry offload")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let local = harness::local_top1("digits", DIGITS[0]);
    assert!(stdout.contains("status ok"), "{stdout}");
    assert!(stdout.contains(&format!("#1 class {local}")), "{stdout}");
    assert!(stdout.contains("queue wait"), "{stdout}");
}
