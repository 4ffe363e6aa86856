//! A device's probes (model `ferry-probe`) are answered at once with `ok` and the edge's queue
//! timings, and the edge counts them as probes, not as errors (issue 13: after a testbed run
//! its stats showed 673 "errors" that were all probes).

use std::time::Duration;

use ferry_protocol::{DType, Input, ModelName, Precision, Request, Shape, Status, Tensor, PROBE_MODEL};
use ferry_tests::harness::{now_us, Broker, Edge, EdgeOptions};

fn probe(device: &ferry_transport::mqtt::MqttOffloader, model: &str, bytes: u32) -> Request {
    Request {
        request_id: device.next_request_id(),
        device_id: device.device(),
        model: ModelName::new(model).expect("model name"),
        precision: Precision::Any,
        deadline_ms: None,
        sent_at_us: now_us(),
        input: Input::Tensor(Tensor::new(DType::U8, Shape::new(&[bytes]).expect("shape"), vec![0u8; bytes as usize]).expect("tensor")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_answered_ok_and_counted_as_probes_not_errors() {
    let broker = Broker::start();
    let mut edge = Edge::start(&broker, &EdgeOptions::default());
    let dev1 = broker.device("dev-1").await;
    for bytes in [1, 16_384, 16_384] {
        let r = dev1.offload(probe(&dev1, PROBE_MODEL, bytes), Duration::from_secs(10)).await.expect("probe answered");
        assert_eq!(r.status, Status::Ok, "{r:?}");
        assert!(r.top_k.is_empty() && r.output.is_none(), "a probe carries no result: {r:?}");
    }
    // A model the edge really does not serve is still an error.
    let r = dev1.offload(probe(&dev1, "no-such-model", 8), Duration::from_secs(10)).await.expect("answered");
    assert_eq!(r.status, Status::UnknownModel);

    edge.proc.terminate();
    let log = edge.proc.stderr.text();
    let stopped = log.lines().find(|l| l.contains("stopped") && l.contains("StatsSnapshot")).unwrap_or_else(|| panic!("no final counters:\n{log}"));
    assert!(stopped.contains("answered_error: 1,"), "{stopped}");
    assert!(stopped.contains("probes: 3,"), "{stopped}");
    assert!(stopped.contains("received: 4,"), "{stopped}");
}
