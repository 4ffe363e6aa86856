//! Codec speed against the cost it competes with: copying the payload once.
//! `cargo bench -p ferry-protocol --bench protocol` (std only, no harness). Prints ns per
//! operation and the ratio to a plain `copy_from_slice` of the same payload measured in the
//! same run: decode borrows, so for large payloads its ratio is ≪ 1; encode copies the
//! payload once, so ≈ 1 (small messages are dominated by fixed costs of ~100-250 ns).

use std::hint::black_box;
use std::time::Instant;

use ferry_protocol::*;

fn time_ns(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 + 1 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn main() {
    for (name, dims) in [("1 KB", [1u32, 1, 16, 16]), ("600 KB", [1, 3, 224, 224])] {
        let shape = Shape::new(&dims).unwrap();
        let data = vec![7u8; shape.byte_len(DType::F32).unwrap()];
        let req = RequestRef {
            request_id: 1,
            device_id: DeviceId::new("rpi4-kitchen-01").unwrap(),
            model: ModelName::new("mobilenet_v2").unwrap(),
            precision: Precision::Fp32,
            deadline_ms: Some(100),
            sent_at_us: 0,
            input: InputRef::Tensor(TensorRef::new(DType::F32, shape, &data).unwrap()),
        };
        let mut buf = Vec::new();
        encode_request(&req, &mut buf).unwrap();
        let limits = Limits::default();
        let iters = if data.len() > 100_000 { 2_000 } else { 200_000 };

        let mut copy = vec![0u8; data.len()];
        let memcpy = time_ns(iters, || copy.copy_from_slice(black_box(&data)));
        let encode = time_ns(iters, || {
            encode_request(black_box(&req), &mut buf).unwrap();
        });
        let decode = time_ns(iters, || {
            black_box(decode_request(black_box(&buf), &limits).unwrap());
        });
        println!(
            "{name} f32 tensor request: encode {encode:.0} ns ({:.2}x memcpy), decode {decode:.0} ns ({:.3}x memcpy), memcpy {memcpy:.0} ns",
            encode / memcpy,
            decode / memcpy
        );
    }
}
