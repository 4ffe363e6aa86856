//! Decoding is total: whatever bytes arrive, `decode_*` returns a value or a typed error and
//! never panics. These tests throw random bytes, every truncation, every single-bit flip,
//! every version byte and huge declared lengths at the decoders, from a fixed-seed generator
//! so that a failure reproduces. Whatever is accepted must re-encode to the very same bytes
//! (the encoding is canonical), which also shows that nothing accepted was misread.

use ferry_protocol::*;

/// xorshift64*: small, deterministic, good enough to spray bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const LIMITS: Limits = Limits {
    max_message_size: 1 << 20,
};

/// Decodes `buf` both ways; anything accepted must re-encode byte for byte — except the
/// version byte of a request, which the encoder sets to the oldest version that carries the
/// input (a version-2 message may carry a version-1 input).
fn decode_everything(buf: &[u8]) {
    let mut out = Vec::new();
    match decode_request(buf, &LIMITS) {
        Ok(req) => {
            encode_request(&req, &mut out).unwrap();
            assert!(out[3] <= buf[3] && out[3] == req.input.min_version(), "version {} re-encoded as {}", buf[3], out[3]);
            out[3] = buf[3];
            assert_eq!(out, buf, "accepted request does not re-encode to itself");
        }
        Err(e) => {
            let _ = e.to_string();
            if let Some(id) = e.identity {
                assert!(buf.len() > 14 + id.device_id.as_bytes().len());
            }
            let _ = encode_decode_failure(&e, EdgeTimings::default(), &mut out);
        }
    }
    match decode_response(buf, &LIMITS) {
        Ok(resp) => {
            encode_response(&resp, &mut out).unwrap();
            assert_eq!(out, buf, "accepted response does not re-encode to itself");
            assert_eq!(resp.top_k.iter().count(), resp.top_k.len());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = peek_response_header(buf);
}

/// A spread of valid messages: every dtype, image formats, 0 to 8 dimensions, responses with
/// and without top-k, output and detail.
fn valid_messages() -> Vec<Vec<u8>> {
    let mut msgs = Vec::new();
    let device = DeviceId::new("dev-1").unwrap();
    let model = ModelName::new("m.v2").unwrap();
    let quants: Vec<Quantized> = [(DType::I8, &[0.5f32][..]), (DType::U8, &[0.25f32, 1.0, 3.0][..])]
        .into_iter()
        .map(|(dtype, params)| {
            let t = Tensor::new(dtype, Shape::new(&[1, 3, 4, 8]).unwrap(), vec![3u8; 96]).unwrap();
            let zeros: Vec<i32> = params.iter().map(|_| -1).collect();
            Quantized::new(params, &zeros, t).unwrap()
        })
        .collect();
    let base = |input| RequestRef {
        request_id: 77,
        device_id: device,
        model,
        precision: Precision::Fp16,
        deadline_ms: Some(30),
        sent_at_us: 123_456,
        input,
    };
    let mut out = Vec::new();
    for format in [
        ImageFormat::Unspecified,
        ImageFormat::Jpeg,
        ImageFormat::Png,
    ] {
        encode_request(
            &base(InputRef::Image {
                format,
                bytes: b"\xff\xd8imagebytes",
            }),
            &mut out,
        )
        .unwrap();
        msgs.push(out.clone());
    }
    let data = [3u8; 96];
    for (dtype, dims) in [
        (DType::F32, &[2u32, 3, 4][..]),
        (DType::F16, &[48][..]),
        (DType::U8, &[1, 1, 1, 1, 1, 1, 2, 48][..]),
        (DType::I8, &[96][..]),
        (DType::I32, &[24][..]),
        (DType::I64, &[3, 4][..]),
        (DType::I64, &[0, 5][..]),
    ] {
        let shape = Shape::new(dims).unwrap();
        let len = shape.byte_len(dtype).unwrap();
        let t = TensorRef::new(dtype, shape, &data[..len]).unwrap();
        encode_request(&base(InputRef::Tensor(t)), &mut out).unwrap();
        msgs.push(out.clone());
    }
    // Version 2's input kinds.
    encode_request(&base(InputRef::ShapedImage { format: ImageFormat::Jpeg, bytes: b"\xff\xd8shaped" }), &mut out).unwrap();
    msgs.push(out.clone());
    for q in &quants {
        encode_request(&base(InputRef::Quantized(q.as_ref())), &mut out).unwrap();
        msgs.push(out.clone());
    }
    let entries = [
        TopKEntry {
            class: 5,
            score: 0.7,
            label: "ünïcode",
        },
        TopKEntry {
            class: 9,
            score: f32::NAN,
            label: "",
        },
    ];
    let output = TensorRef::new(DType::F32, Shape::new(&[2]).unwrap(), &data[..8]).unwrap();
    let timings = EdgeTimings {
        queue_wait_us: 10,
        compute_us: 20,
        batch_size: 3,
        queue_depth: 4,
    };
    for (top_k, output, detail) in [
        (TopKList::from_entries(&entries), Some(output), ""),
        (TopKList::EMPTY, None, "queue full"),
        (TopKList::from_entries(&entries[..1]), None, ""),
        (TopKList::EMPTY, Some(output), "x"),
    ] {
        let resp = ResponseRef {
            request_id: 77,
            status: Status::Ok,
            detail,
            timings,
            top_k,
            output,
        };
        encode_response(&resp, &mut out).unwrap();
        msgs.push(out.clone());
    }
    msgs
}

#[test]
fn valid_messages_decode() {
    for m in valid_messages() {
        let ok = decode_request(&m, &LIMITS).is_ok() || decode_response(&m, &LIMITS).is_ok();
        assert!(ok, "{m:?}");
        decode_everything(&m);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..20_000 {
        let len = rng.below(200);
        decode_everything(&rng.bytes(len));
    }
}

#[test]
fn random_bytes_behind_a_valid_prefix_never_panic() {
    let mut rng = Rng(0x5EED_0002);
    for kind in [1u8, 2] {
        for _ in 0..20_000 {
            let mut buf = vec![b'F', b'R', b'Y', PROTOCOL_VERSION, kind, 0];
            buf.extend(rng.bytes(8)); // request id
            if kind == 1 {
                buf.extend([3, b'd', b'e', b'v']);
            }
            let len = rng.below(120);
            buf.extend(rng.bytes(len));
            decode_everything(&buf);
        }
    }
}

#[test]
fn every_truncation_of_a_valid_message_is_a_typed_error() {
    for m in valid_messages() {
        for cut in 0..m.len() {
            let part = &m[..cut];
            decode_everything(part);
            assert!(
                decode_request(part, &LIMITS).is_err(),
                "prefix of {cut} accepted"
            );
            assert!(
                decode_response(part, &LIMITS).is_err(),
                "prefix of {cut} accepted"
            );
        }
    }
}

#[test]
fn every_single_bit_flip_is_handled() {
    for m in valid_messages() {
        for bit in 0..m.len() * 8 {
            let mut flipped = m.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            decode_everything(&flipped);
        }
    }
}

#[test]
fn random_multi_byte_corruption_never_panics() {
    let mut rng = Rng(0x5EED_0003);
    let msgs = valid_messages();
    for _ in 0..30_000 {
        let mut m = msgs[rng.below(msgs.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(m.len());
            m[at] = rng.next() as u8;
        }
        if rng.below(4) == 0 {
            let extra = rng.below(8);
            m.extend(rng.bytes(extra));
        }
        decode_everything(&m);
    }
}

#[test]
fn every_other_version_is_unsupported_with_identity() {
    for m in valid_messages() {
        for version in (0..=255u8).filter(|v| !(OLDEST_VERSION..=PROTOCOL_VERSION).contains(v)) {
            let mut other = m.clone();
            other[3] = version;
            if let Err(e) = decode_request(&other, &LIMITS) {
                if m[4] == 1 {
                    assert_eq!(e.error, DecodeError::UnsupportedVersion { found: version });
                    assert_eq!(e.identity.unwrap().device_id, "dev-1");
                }
            }
            if m[4] == 2 {
                let e = decode_response(&other, &LIMITS).unwrap_err();
                assert_eq!(e.error, DecodeError::UnsupportedVersion { found: version });
                assert_eq!(e.header.unwrap().request_id, 77);
            }
        }
    }
}

#[test]
fn huge_declared_lengths_are_errors_not_allocations() {
    // Overwrite every aligned and unaligned 4-byte window with large values: whichever
    // length field it hits, the decoder must refuse rather than read past or reserve.
    for m in valid_messages() {
        for at in 0..m.len().saturating_sub(3) {
            for value in [
                u32::MAX,
                u32::MAX / 2,
                1 << 20,
                0x0100_0000,
                m.len() as u32 + 1,
            ] {
                let mut big = m.clone();
                big[at..at + 4].copy_from_slice(&value.to_le_bytes());
                decode_everything(&big);
            }
        }
    }
}

#[test]
fn messages_over_the_limit_are_too_large() {
    let mut rng = Rng(0x5EED_0004);
    for m in valid_messages() {
        for _ in 0..20 {
            let max = rng.below(m.len());
            let limits = Limits {
                max_message_size: max,
            };
            let req = decode_request(&m, &limits).err().map(|e| e.error);
            let resp = decode_response(&m, &limits).err().map(|e| e.error);
            let too_large = DecodeError::TooLarge { size: m.len(), max };
            assert!(
                req == Some(too_large) || resp == Some(too_large),
                "{req:?} {resp:?}"
            );
        }
    }
}
