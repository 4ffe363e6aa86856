//! Issue 15 item 1, the edge's half: a device may send, instead of the original file, the image
//! shaped to the model's input as a JPEG, or the exact INT8 tensor (protocol version 2). A real
//! `ferry-edge` behind a real Mosquitto answers each; the INT8 tensor gives the original's
//! scores (it is the same FP32 tensor), the shaped JPEG the same top-1 on a picture the model
//! is sure of; a shaped image of the wrong size and a version-2 input in a version-1 message
//! are refused with a clear error, and the edge goes on serving.

use std::time::Duration;

use ferry_protocol::{DType, ImageFormat, Input, Quantized, Request, Response, Shape, Status, Tensor};
use ferry_runtime::forms::{self, InputQuant};
use ferry_runtime::{preprocess, ModelStore};
use ferry_tests::harness::{self, Broker, Edge, EdgeOptions};

const MODEL: &str = "efficientnet-lite0";
const PICTURE: &str = "models/images/espresso.jpg";

fn with_input(mut request: Request, input: Input) -> Request {
    request.input = input;
    request
}

async fn ask(device: &ferry_transport::mqtt::MqttOffloader, request: Request) -> Response {
    let id = request.request_id;
    let response = device.offload(request, Duration::from_secs(60)).await.expect("an answer");
    assert_eq!(response.request_id, id);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_answers_shaped_jpegs_and_int8_tensors_like_the_original() {
    let broker = Broker::start();
    let edge = Edge::start(&broker, &EdgeOptions { models: vec![MODEL], ..EdgeOptions::default() });
    let device = broker.device("dev-1").await;

    let manifest = ModelStore::new(harness::repo_root().join("models")).manifest(MODEL).unwrap();
    let image = preprocess::load_image(&harness::repo_root().join(PICTURE)).unwrap();

    let original = ask(&device, harness::image_request(&device, MODEL, PICTURE)).await;
    assert_eq!(original.status, Status::Ok, "{}", original.detail);
    let top = &original.top_k[0];
    assert!(top.score >= 0.5, "the espresso is a picture the model is sure of: {top:?}");

    // The exact INT8 tensor: one byte per value, the same scores.
    let quant = InputQuant::of(&manifest);
    let q = forms::quantize_image(&manifest, &image);
    let bytes: Vec<u8> = q.iter().map(|v| *v as u8).collect();
    assert_eq!(bytes.len(), 3 * 224 * 224);
    let tensor = Tensor::new(DType::I8, Shape::new(&[1, 3, 224, 224]).unwrap(), bytes).unwrap();
    let input = Input::Quantized(Quantized::new(&quant.scale, &quant.zero_point, tensor).unwrap());
    let int8 = ask(&device, with_input(harness::image_request(&device, MODEL, PICTURE), input)).await;
    assert_eq!(int8.status, Status::Ok, "{}", int8.detail);
    assert_eq!(int8.top_k[0].class, top.class);
    assert!((int8.top_k[0].score - top.score).abs() < 1e-4, "{:?} vs {top:?}", int8.top_k[0]);

    // The shaped JPEG at quality 85: a fraction of the bytes, the same top-1.
    let jpeg = forms::shaped_jpeg(&manifest, &image, 85).unwrap();
    let shaped = Input::ShapedImage { format: ImageFormat::Jpeg, bytes: jpeg.clone() };
    let answer = ask(&device, with_input(harness::image_request(&device, MODEL, PICTURE), shaped)).await;
    assert_eq!(answer.status, Status::Ok, "{}", answer.detail);
    assert_eq!(answer.top_k[0].class, top.class);
    let original_len = std::fs::read(harness::repo_root().join(PICTURE)).unwrap().len();
    eprintln!("bytes: original {original_len}, shaped JPEG q85 {}, INT8 tensor {}", jpeg.len(), 3 * 224 * 224);

    // The original file (not 224×224) sent as if it were shaped: refused, naming the sizes.
    let bytes = std::fs::read(harness::repo_root().join(PICTURE)).unwrap();
    let wrong = Input::ShapedImage { format: ImageFormat::Jpeg, bytes };
    let refused = ask(&device, with_input(harness::image_request(&device, MODEL, PICTURE), wrong)).await;
    assert_eq!(refused.status, Status::Malformed);
    assert!(refused.detail.contains("224×224"), "{}", refused.detail);

    // A quantized tensor of the wrong shape: refused.
    let small = Tensor::new(DType::I8, Shape::new(&[1, 3, 8, 8]).unwrap(), vec![0; 192]).unwrap();
    let input = Input::Quantized(Quantized::new(&[0.01], &[0], small).unwrap());
    let refused = ask(&device, with_input(harness::image_request(&device, MODEL, PICTURE), input)).await;
    assert_eq!(refused.status, Status::Malformed, "{}", refused.detail);

    // And it goes on serving.
    let again = ask(&device, harness::image_request(&device, MODEL, PICTURE)).await;
    assert_eq!((again.status, again.top_k[0].class), (Status::Ok, top.class));
    drop(edge);
}
