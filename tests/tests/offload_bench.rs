//! Benchmark (ignored by default): the round trip of a Ferry request/response over MQTT v5 +
//! TLS 1.3 on loopback, against a bare rumqttc echo of the same bytes through the same
//! broker, for 1 KB, 100 KB and 600 KB payloads. Both echo responders run in this process
//! and do no inference, so the difference is the envelope (encode, decode, copies) and the
//! offloader's correlation machinery.
//!
//!     cargo test --release -p ferry-tests --test offload_bench -- --ignored --nocapture

use std::time::{Duration, Instant};

use ferry_protocol::{
    decode_request, encode_response, DType, EdgeTimings, ImageFormat, Input, Limits, ModelName,
    Precision, Request, ResponseRef, Shape, Status, TensorRef, TopKList,
};
use ferry_transport::mqtt::{tls, TlsVersion};
use ferry_tests::harness::{self, cert, Broker};
use ferry_tests::raw::{self, RawClient};

fn identity(name: &str) -> std::sync::Arc<rumqttc::tokio_rustls::rustls::ClientConfig> {
    tls::build(
        &cert("ca.crt"),
        Some((&cert(&format!("{name}.crt")), &cert(&format!("{name}.key")))),
        tls::protocol_versions(TlsVersion::Tls13),
    )
    .unwrap()
}

/// Echoes raw payloads from `ferry/<d>/req/raw` to `ferry/<d>/resp`, and Ferry requests on
/// `ferry/<d>/req/echo` as a Ferry response carrying the payload as its output tensor.
async fn responder(mut c: RawClient) {
    let limits = Limits::default();
    let mut buf = Vec::new();
    // Runs until the test ends (the task is dropped with the runtime).
    while let Some((topic, payload)) = c.next_message(Duration::from_secs(3600)).await {
        let device = topic.split('/').nth(1).unwrap_or("").to_string();
        let resp_topic = format!("ferry/{device}/resp");
        if topic.ends_with("/raw") {
            c.publish_nowait(&resp_topic, payload).await;
            continue;
        }
        let Ok(req) = decode_request(&payload, &limits) else { continue };
        let data = req.input.payload();
        let shape = Shape::new(&[data.len() as u32]).unwrap();
        let output = TensorRef::new(DType::U8, shape, data).unwrap();
        let resp = ResponseRef {
            request_id: req.request_id,
            status: Status::Ok,
            detail: "",
            timings: EdgeTimings::default(),
            top_k: TopKList::EMPTY,
            output: Some(output),
        };
        encode_response(&resp, &mut buf).unwrap();
        c.publish_nowait(&resp_topic, buf.clone()).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_ferry_round_trip_vs_bare_mqtt_echo() {
    let broker = Broker::start();
    let mut edge = raw::connect(broker.port, Some(identity("ferry-edge")), "bench-echo").await.unwrap();
    edge.subscribe("ferry/+/req/raw").await;
    edge.subscribe("ferry/+/req/echo").await;
    tokio::spawn(responder(edge));
    let mut bare = raw::connect(broker.port, Some(identity("dev-2")), "dev-2-bare").await.unwrap();
    bare.subscribe("ferry/dev-2/resp").await;
    let device = broker.device("dev-1").await;

    println!("| payload | iterations | bare MQTT echo p50 | Ferry round trip p50 | ratio |");
    println!("|---|---|---|---|---|");
    for (label, size, iterations) in [("1 KB", 1_000, 300), ("100 KB", 100_000, 200), ("600 KB", 600_000, 100)] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let (mut bare_t, mut ferry_t) = (Vec::new(), Vec::new());
        for i in 0..iterations + 10 {
            // Interleaved, so both see the same machine state.
            let start = Instant::now();
            bare.publish_nowait("ferry/dev-2/req/raw", payload.clone()).await;
            let (_, echoed) = bare.next_message(Duration::from_secs(10)).await.expect("bare echo");
            let bare_rtt = start.elapsed();
            assert_eq!(echoed.len(), size);

            let request = Request {
                request_id: device.next_request_id(),
                device_id: device.device(),
                model: ModelName::new("echo").unwrap(),
                precision: Precision::Any,
                deadline_ms: None,
                sent_at_us: harness::now_us(),
                input: Input::Image { format: ImageFormat::Unspecified, bytes: payload.clone() },
            };
            let start = Instant::now();
            let response = device.offload(request, Duration::from_secs(10)).await.expect("ferry echo");
            let ferry_rtt = start.elapsed();
            assert_eq!(response.output.map(|t| t.data().len()), Some(size));
            if i >= 10 {
                bare_t.push(bare_rtt);
                ferry_t.push(ferry_rtt);
            }
        }
        let (b, f) = (median(bare_t), median(ferry_t));
        println!(
            "| {label} | {iterations} | {:.3} ms | {:.3} ms | {:.2}x |",
            b.as_secs_f64() * 1e3,
            f.as_secs_f64() * 1e3,
            f.as_secs_f64() / b.as_secs_f64()
        );
    }
}
