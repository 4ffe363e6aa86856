//! The framing overhead bound from issue 3: at most 64 bytes plus 1% of the payload for
//! payloads of 10 KB and more. "Overhead" here is every byte of the message that is not the
//! payload, names included, with realistic names; the structure alone (names excluded)
//! stays within 64 bytes at any size for images and tensors of up to 6 dimensions.

use ferry_protocol::*;

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 600_000];

fn request(input: InputRef<'_>) -> RequestRef<'_> {
    RequestRef {
        request_id: u64::MAX,
        device_id: DeviceId::new("rpi4-kitchen-01").unwrap(),
        model: ModelName::new("mobilenet_v2_int8").unwrap(),
        precision: Precision::Int8,
        deadline_ms: Some(200),
        sent_at_us: 1_700_000_000_000_000,
        input,
    }
}

fn bound(payload: usize) -> usize {
    64 + payload / 100
}

fn names_len(req: &RequestRef<'_>) -> usize {
    req.device_id.as_bytes().len() + req.model.as_bytes().len()
}

fn check(req: &RequestRef<'_>, what: &str) {
    let mut buf = Vec::new();
    let len = encode_request(req, &mut buf).unwrap();
    let payload = req.input.payload().len();
    let overhead = len - payload;
    let structural = overhead - names_len(req);
    println!("{what}: payload {payload} B, overhead {overhead} B ({structural} B without names)");
    if payload >= 10_000 {
        assert!(
            overhead <= bound(payload),
            "{what}: {overhead} > {}",
            bound(payload)
        );
    }
    assert!(
        structural <= 64,
        "{what}: structure alone is {structural} B"
    );
}

#[test]
fn image_request_framing_stays_within_64_bytes_plus_1_percent() {
    for size in SIZES {
        let bytes = vec![0xAB; size];
        check(
            &request(InputRef::Image {
                format: ImageFormat::Jpeg,
                bytes: &bytes,
            }),
            "image",
        );
    }
}

#[test]
fn tensor_request_framing_stays_within_64_bytes_plus_1_percent() {
    for size in SIZES {
        let data = vec![0u8; size];
        // f32 NCHW-like: 1 × 1 × 10 × (size / 40)
        let shape = Shape::new(&[1, 1, 10, (size / 40) as u32]).unwrap();
        let t = TensorRef::new(DType::F32, shape, &data).unwrap();
        check(&request(InputRef::Tensor(t)), "f32 tensor");
        let shape = Shape::new(&[size as u32]).unwrap();
        let t = TensorRef::new(DType::U8, shape, &data).unwrap();
        check(&request(InputRef::Tensor(t)), "u8 tensor");
    }
}

#[test]
fn framing_with_longest_names_still_meets_the_bound_from_100_kb() {
    let data = vec![0u8; 100_000];
    let mut req = request(InputRef::Image {
        format: ImageFormat::Png,
        bytes: &data,
    });
    req.device_id = DeviceId::new(&"d".repeat(64)).unwrap();
    req.model = ModelName::new(&"m".repeat(64)).unwrap();
    let shape = Shape::new(&[1, 1, 1, 1, 1, 1, 1, 100_000]).unwrap();
    for input in [
        req.input,
        InputRef::Tensor(TensorRef::new(DType::U8, shape, &data).unwrap()),
    ] {
        let r = RequestRef { input, ..req };
        assert!(encoded_request_len(&r) - data.len() <= bound(data.len()));
    }
}

#[test]
fn response_framing_stays_within_64_bytes_plus_1_percent() {
    for size in SIZES {
        let data = vec![0u8; size];
        let shape = Shape::new(&[1, (size / 4) as u32]).unwrap();
        let resp = ResponseRef {
            output: Some(TensorRef::new(DType::F32, shape, &data).unwrap()),
            ..ResponseRef::error(1, Status::Ok, "", EdgeTimings::default())
        };
        let overhead = encoded_response_len(&resp) - size;
        println!("response: payload {size} B, overhead {overhead} B");
        assert!(overhead <= 64, "response overhead {overhead}");
    }
}
