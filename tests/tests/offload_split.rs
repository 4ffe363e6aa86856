//! Issue 15 item 3, end to end: split inference through a real Mosquitto and a real
//! `ferry-edge` serving the tails of efficientnet-lite0. For every candidate cut, the device
//! runs the head, sends the crossing tensor as u8 with its scale (protocol version 3), and the
//! edge's answer has the whole model's top-1 on a picture it is sure of. A cut the edge does
//! not know, a tensor of the wrong shape and a second scale are refused with a clear error,
//! and the edge goes on serving.

use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{DType, Input, Quantized, Request, Response, Shape, Status, Tensor};
use ferry_runtime::split::Splitter;
use ferry_runtime::{preprocess, Cancel, ModelStore, Threads, TractEngine};
use ferry_tests::harness::{self, Broker, Edge, EdgeOptions};

const MODEL: &str = "efficientnet-lite0";
const PICTURE: &str = "models/images/espresso.jpg";

async fn ask(device: &ferry_transport::mqtt::MqttOffloader, mut request: Request, input: Input) -> Response {
    request.input = input;
    let id = request.request_id;
    let response = device.offload(request, Duration::from_secs(60)).await.expect("an answer");
    assert_eq!(response.request_id, id);
    response
}

fn split_input(cut: &str, shape: &[usize], scales: &[f32], zeros: &[i32], values: Vec<u8>) -> Input {
    let dims: Vec<u32> = shape.iter().map(|&d| d as u32).collect();
    let tensor = Tensor::new(DType::U8, Shape::new(&dims).unwrap(), values).unwrap();
    Input::Split { cut: cut.to_string(), tensor: Quantized::new(scales, zeros, tensor).unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_runs_the_tail_of_every_cut() {
    let broker = Broker::start();
    let edge = Edge::start(&broker, &EdgeOptions { models: vec![MODEL], splits: true, ..EdgeOptions::default() });
    let device = broker.device("dev-1").await;

    let manifest = Arc::new(ModelStore::new(harness::repo_root().join("models")).manifest(MODEL).unwrap());
    let splitter = Splitter::open(manifest).unwrap();
    assert!(splitter.cuts().len() >= 3);
    let cache = tempfile::tempdir().unwrap();
    let engine = TractEngine::new(Threads(1));
    let image = preprocess::load_image(&harness::repo_root().join(PICTURE)).unwrap();

    let original = ask(&device, harness::image_request(&device, MODEL, PICTURE), harness::image_request(&device, MODEL, PICTURE).input).await;
    assert_eq!(original.status, Status::Ok, "{}", original.detail);
    let top = original.top_k[0].clone();
    assert!(top.score >= 0.5, "the espresso is a picture the model is sure of: {top:?}");

    for cut in splitter.cuts() {
        let head = splitter.load_head(&engine, cut, cache.path()).unwrap();
        let (q, _) = head.run_image(&image, &Cancel::new()).unwrap();
        let input = split_input(&cut.tensor, &cut.shape, &[q.scale], &[q.zero_point], q.values);
        let answer = ask(&device, harness::image_request(&device, MODEL, PICTURE), input).await;
        assert_eq!(answer.status, Status::Ok, "{}: {}", cut.name(), answer.detail);
        assert_eq!(answer.top_k[0].class, top.class, "{}: {:?} vs {top:?}", cut.name(), answer.top_k[0]);
        eprintln!("{}: {} bytes, edge tail {} µs, score {:.3} (whole {:.3})", cut.name(), cut.values(), answer.timings.compute_us, answer.top_k[0].score, top.score);
    }

    let cut = &splitter.cuts()[0];
    // A tensor name that is no cut: refused, listing the cuts.
    let bad = split_input("/no/such/tensor", &cut.shape, &[0.1], &[0], vec![0; cut.values()]);
    let refused = ask(&device, harness::image_request(&device, MODEL, PICTURE), bad).await;
    assert_eq!(refused.status, Status::UnknownModel);
    assert!(refused.detail.contains(&cut.name()), "{}", refused.detail);
    // The wrong shape.
    let bad = split_input(&cut.tensor, &[1, 2, 2, 2], &[0.1], &[0], vec![0; 8]);
    let refused = ask(&device, harness::image_request(&device, MODEL, PICTURE), bad).await;
    assert_eq!(refused.status, Status::Malformed);
    assert!(refused.detail.contains("shape"), "{}", refused.detail);
    // Per-channel parameters: a split tensor has one scale.
    let bad = split_input(&cut.tensor, &cut.shape, &[0.1, 0.2], &[0, 0], vec![0; cut.values()]);
    let refused = ask(&device, harness::image_request(&device, MODEL, PICTURE), bad).await;
    assert_eq!(refused.status, Status::Malformed);
    assert!(refused.detail.contains("one scale"), "{}", refused.detail);
    // A model the edge does not cut.
    let mut digits = harness::image_request(&device, MODEL, PICTURE);
    digits.model = ferry_protocol::ModelName::new("digits").unwrap();
    let refused = ask(&device, digits, split_input(&cut.tensor, &cut.shape, &[0.1], &[0], vec![0; cut.values()])).await;
    assert_eq!(refused.status, Status::UnknownModel, "{}", refused.detail);

    // And it goes on serving.
    let again = ask(&device, harness::image_request(&device, MODEL, PICTURE), harness::image_request(&device, MODEL, PICTURE).input).await;
    assert_eq!((again.status, again.top_k[0].class), (Status::Ok, top.class));
    drop(edge);
}
