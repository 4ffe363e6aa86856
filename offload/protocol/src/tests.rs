//! Unit tests of the codec: round trips, each typed error, identity recovery, topics.

use super::*;

fn device() -> DeviceId {
    DeviceId::new("pi4-kitchen_01.lab").unwrap()
}

fn model() -> ModelName {
    ModelName::new("mobilenet_v2").unwrap()
}

fn image_request(bytes: &[u8]) -> RequestRef<'_> {
    RequestRef {
        request_id: 0x0102_0304_0506_0708,
        device_id: device(),
        model: model(),
        precision: Precision::Int8,
        deadline_ms: Some(250),
        sent_at_us: 1_700_000_000_000_000,
        input: InputRef::Image {
            format: ImageFormat::Jpeg,
            bytes,
        },
    }
}

fn tensor_request(data: &[u8]) -> RequestRef<'_> {
    let shape = Shape::new(&[1, 3, 2, 2]).unwrap();
    RequestRef {
        input: InputRef::Tensor(TensorRef::new(DType::F32, shape, data).unwrap()),
        precision: Precision::Fp32,
        deadline_ms: None,
        ..image_request(&[])
    }
}

fn encode_req(req: &RequestRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(req, &mut out).unwrap();
    out
}

fn decode_req(buf: &[u8]) -> Result<RequestRef<'_>, RequestDecodeError> {
    decode_request(buf, &Limits::default())
}

#[test]
fn image_request_round_trips_and_borrows_its_payload() {
    let jpeg = [0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let req = image_request(&jpeg);
    let buf = encode_req(&req);
    assert_eq!(buf.len(), encoded_request_len(&req));
    let back = decode_req(&buf).unwrap();
    assert_eq!(back, req);
    // Zero copy: the payload points into the message buffer.
    let payload = back.input.payload();
    assert!(buf.as_ptr_range().contains(&payload.as_ptr()));
    assert_eq!(back.to_request().as_ref(), req);
}

#[test]
fn tensor_request_round_trips_with_no_deadline() {
    let data: Vec<u8> = (0..48).collect();
    let req = tensor_request(&data);
    let back = decode_req(&encode_req(&req)).unwrap().to_request();
    assert_eq!(back.as_ref(), req);
    assert_eq!(back.deadline_ms, None);
}

#[test]
fn encoding_reuses_and_replaces_the_callers_buffer() {
    let mut out = vec![9u8; 1000];
    let len = encode_request(&image_request(b"abc"), &mut out).unwrap();
    assert_eq!(out.len(), len);
    assert_eq!(&out[..3], b"FRY");
}

#[test]
fn response_with_top_k_and_output_round_trips() {
    let entries = [
        TopKEntry {
            class: 281,
            score: 0.91,
            label: "tabby cat",
        },
        TopKEntry {
            class: 282,
            score: 0.05,
            label: "",
        },
    ];
    let output = Tensor::from_f32(Shape::new(&[1, 2]).unwrap(), &[0.25, -1.5]).unwrap();
    let resp = ResponseRef {
        request_id: 7,
        status: Status::Ok,
        detail: "",
        timings: EdgeTimings {
            queue_wait_us: 1200,
            compute_us: 8000,
            batch_size: 4,
            queue_depth: 3,
        },
        top_k: TopKList::from_entries(&entries),
        output: Some(output.as_ref()),
    };
    let mut buf = Vec::new();
    let len = encode_response(&resp, &mut buf).unwrap();
    assert_eq!(len, encoded_response_len(&resp));
    let back = decode_response(&buf, &Limits::default()).unwrap();
    assert_eq!(back, resp);
    assert_eq!(back.top_k.iter().collect::<Vec<_>>(), entries);
    assert_eq!(
        back.output
            .unwrap()
            .f32_values()
            .unwrap()
            .collect::<Vec<_>>(),
        [0.25, -1.5]
    );
    let owned = back.to_response();
    assert_eq!(owned.as_ref(), resp);
    assert_eq!(owned.top_k[0].label, "tabby cat");
}

#[test]
fn error_response_carries_status_and_clipped_detail() {
    let long = "é".repeat(200); // 400 bytes, cut at a char boundary
    let mut buf = Vec::new();
    encode_error_response(
        9,
        Status::Busy,
        &long,
        EdgeTimings {
            queue_depth: 64,
            ..Default::default()
        },
        &mut buf,
    );
    let back = decode_response(&buf, &Limits::default()).unwrap();
    assert_eq!(back.status, Status::Busy);
    assert_eq!(back.request_id, 9);
    assert_eq!(back.detail.len(), 254);
    assert_eq!(back.timings.queue_depth, 64);
    assert!(back.top_k.is_empty() && back.output.is_none());
}

#[test]
fn request_of_unknown_version_is_refused_but_its_sender_is_identified() {
    let mut buf = encode_req(&image_request(b"img"));
    buf[3] = 0; // an older device
    let err = decode_req(&buf).unwrap_err();
    assert_eq!(err.error, DecodeError::UnsupportedVersion { found: 0 });
    let id = err.identity.unwrap();
    assert_eq!(
        (id.request_id, id.device_id, id.version),
        (0x0102_0304_0506_0708, device(), 0)
    );

    let mut out = Vec::new();
    let to = encode_decode_failure(&err, EdgeTimings::default(), &mut out).unwrap();
    assert_eq!(to, device());
    let answer = decode_response(&out, &Limits::default()).unwrap();
    assert_eq!(answer.status, Status::UnsupportedVersion);
    assert_eq!(answer.request_id, 0x0102_0304_0506_0708);
    assert!(answer.detail.contains("version 0"), "{}", answer.detail);
}

#[test]
fn oversized_request_is_too_large_with_identity() {
    let payload = vec![0u8; 2000];
    let buf = encode_req(&image_request(&payload));
    let err = decode_request(
        &buf,
        &Limits {
            max_message_size: 1000,
        },
    )
    .unwrap_err();
    assert_eq!(
        err.error,
        DecodeError::TooLarge {
            size: buf.len(),
            max: 1000
        }
    );
    assert_eq!(err.error.status(), Status::TooLarge);
    assert_eq!(err.identity.unwrap().device_id, device());
}

#[test]
fn bad_body_keeps_identity_bad_prefix_loses_it() {
    let mut buf = encode_req(&image_request(b"img"));
    let model_len_at = wire::PREFIX_LEN + 1 + device().as_bytes().len() + 8 + 4 + 1;
    buf[model_len_at + 1] = b'/'; // model name now has a '/'
    let err = decode_req(&buf).unwrap_err();
    assert!(matches!(
        err.error,
        DecodeError::InvalidName {
            field: "model name",
            ..
        }
    ));
    assert!(err.identity.is_some());
    assert_eq!(err.error.status(), Status::Malformed);

    let mut buf = encode_req(&image_request(b"img"));
    buf[wire::PREFIX_LEN + 1] = b'#'; // device id now has a '#'
    let err = decode_req(&buf).unwrap_err();
    assert!(matches!(
        err.error,
        DecodeError::InvalidName {
            field: "device id",
            ..
        }
    ));
    assert_eq!(err.identity, None);
    assert_eq!(
        encode_decode_failure(&err, EdgeTimings::default(), &mut Vec::new()),
        None
    );
}

#[test]
fn foreign_bytes_are_bad_magic_and_short_prefixes_are_truncated() {
    assert_eq!(
        decode_req(b"GET / HTTP/1.1").unwrap_err().error,
        DecodeError::BadMagic
    );
    assert_eq!(
        decode_req(b"").unwrap_err().error,
        DecodeError::Truncated { field: "magic" }
    );
    assert_eq!(
        decode_req(b"FR").unwrap_err().error,
        DecodeError::Truncated { field: "magic" }
    );
    assert_eq!(
        decode_req(b"FRY\x01").unwrap_err().error,
        DecodeError::Truncated { field: "kind" }
    );
}

#[test]
fn response_is_not_a_request() {
    let mut buf = Vec::new();
    encode_error_response(1, Status::Internal, "x", EdgeTimings::default(), &mut buf);
    let err = decode_req(&buf).unwrap_err().error;
    assert_eq!(
        err,
        DecodeError::WrongKind {
            expected: MessageKind::Request,
            found: 2
        }
    );
    let req = encode_req(&image_request(b""));
    let err = decode_response(&req, &Limits::default()).unwrap_err().error;
    assert_eq!(
        err,
        DecodeError::WrongKind {
            expected: MessageKind::Response,
            found: 1
        }
    );
}

#[test]
fn response_from_a_newer_edge_still_tells_its_status() {
    let mut buf = Vec::new();
    encode_error_response(
        5,
        Status::UnsupportedVersion,
        "speaks 2",
        EdgeTimings::default(),
        &mut buf,
    );
    buf[3] = 3;
    let err = decode_response(&buf, &Limits::default()).unwrap_err();
    assert_eq!(err.error, DecodeError::UnsupportedVersion { found: 3 });
    let header = err.header.unwrap();
    assert_eq!(
        (header.version, header.request_id, header.status),
        (3, 5, Status::UnsupportedVersion)
    );
    assert_eq!(peek_response_header(&buf).unwrap(), header);
}

/// Found by the `envelope` fuzzer (fuzz/regressions/envelope/response-claiming-version-2): a
/// response claiming version 2 decoded, and re-encoded as version 1, to other bytes. Every edge
/// writes responses as version 1; a later version is refused, its status still told.
#[test]
fn a_response_claiming_version_2_is_refused() {
    let mut buf = Vec::new();
    encode_error_response(9, Status::Busy, "busy", EdgeTimings::default(), &mut buf);
    assert_eq!(buf[3], 1);
    buf[3] = 2;
    let err = decode_response(&buf, &Limits::default()).unwrap_err();
    assert_eq!(err.error, DecodeError::UnsupportedVersion { found: 2 });
    assert_eq!(err.header.unwrap().status, Status::Busy);
}

#[test]
fn reserved_flags_and_trailing_bytes_are_malformed() {
    let mut buf = encode_req(&image_request(b"img"));
    buf[5] = 0x80;
    assert_eq!(
        decode_req(&buf).unwrap_err().error,
        DecodeError::ReservedFlags(0x80)
    );
    let mut buf = encode_req(&image_request(b"img"));
    buf.push(0);
    assert_eq!(
        decode_req(&buf).unwrap_err().error,
        DecodeError::TrailingBytes(1)
    );
}

#[test]
fn declared_lengths_beyond_the_message_are_truncation_not_allocation() {
    let mut buf = encode_req(&image_request(b"img"));
    let n = buf.len();
    buf[n - 7..n - 3].copy_from_slice(&u32::MAX.to_le_bytes()); // image length
    assert_eq!(
        decode_req(&buf).unwrap_err().error,
        DecodeError::Truncated { field: "image" }
    );
}

#[test]
fn tensor_shape_must_match_data_and_not_overflow() {
    let data = [0u8; 48];
    let mut buf = encode_req(&tensor_request(&data));
    // dims start after: input tag, dtype, ndim
    let dims_at = buf.len() - 48 - 4 - 16;
    buf[dims_at..dims_at + 4].copy_from_slice(&2u32.to_le_bytes());
    let err = decode_req(&buf).unwrap_err().error;
    assert_eq!(
        err,
        DecodeError::Tensor(TensorError::LengthMismatch {
            expected: 96,
            actual: 48
        })
    );

    for d in 0..4 {
        buf[dims_at + 4 * d..dims_at + 4 * d + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    let err = decode_req(&buf).unwrap_err().error;
    assert_eq!(err, DecodeError::Tensor(TensorError::Overflow));

    buf[dims_at - 1] = 9; // ndim
    let err = decode_req(&buf).unwrap_err().error;
    assert_eq!(
        err,
        DecodeError::Tensor(TensorError::TooManyDims { ndim: 9 })
    );
}

#[test]
fn tensors_are_checked_at_construction() {
    let shape = Shape::new(&[2, 3]).unwrap();
    assert!(TensorRef::new(DType::I64, shape, &[0; 48]).is_ok());
    assert_eq!(
        TensorRef::new(DType::I32, shape, &[0; 23]).unwrap_err(),
        TensorError::LengthMismatch {
            expected: 24,
            actual: 23
        }
    );
    assert_eq!(
        Shape::new(&[1; 9]).unwrap_err(),
        TensorError::TooManyDims { ndim: 9 }
    );
    let scalar = Shape::new(&[]).unwrap();
    assert_eq!(scalar.byte_len(DType::F16), Some(2));
}

#[test]
fn unknown_codes_are_named() {
    let mut buf = encode_req(&image_request(b"img"));
    let precision_at = wire::PREFIX_LEN + 1 + device().as_bytes().len() + 8 + 4;
    buf[precision_at] = 200;
    assert_eq!(
        decode_req(&buf).unwrap_err().error,
        DecodeError::UnknownCode {
            field: "precision",
            code: 200
        }
    );
}

#[test]
fn encoder_refuses_what_the_wire_cannot_say() {
    let label = "x".repeat(256);
    let entries = [TopKEntry {
        class: 0,
        score: 0.0,
        label: &label,
    }];
    let resp = ResponseRef {
        top_k: TopKList::from_entries(&entries),
        ..ResponseRef::error(1, Status::Ok, "", EdgeTimings::default())
    };
    let mut out = vec![1, 2, 3];
    assert_eq!(
        encode_response(&resp, &mut out).unwrap_err(),
        EncodeError::TextTooLong {
            field: "top-k label",
            len: 256
        }
    );
    assert!(out.is_empty());
    let many = vec![
        TopKEntry {
            class: 0,
            score: 0.0,
            label: ""
        };
        256
    ];
    let resp = ResponseRef {
        top_k: TopKList::from_entries(&many),
        ..resp
    };
    assert_eq!(
        encode_response(&resp, &mut out).unwrap_err(),
        EncodeError::TooManyTopK { count: 256 }
    );
}

#[test]
fn names_accept_topic_safe_ascii_only() {
    assert!(DeviceId::new("cam-01_a.b").is_ok());
    assert_eq!(DeviceId::new("").unwrap_err(), NameError::Empty);
    assert_eq!(
        DeviceId::new(&"a".repeat(65)).unwrap_err(),
        NameError::TooLong { len: 65 }
    );
    assert!(ModelName::new(&"a".repeat(64)).is_ok());
    for bad in ["a/b", "a+", "#", "$SYS", "a b", "é", "a\0"] {
        assert!(
            matches!(DeviceId::new(bad), Err(NameError::BadByte { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(device(), "pi4-kitchen_01.lab");
    assert_eq!(format!("{:?}", model()), "\"mobilenet_v2\"");
}

#[test]
fn request_topic_round_trips_through_the_parser() {
    let topic = topics::request_topic(&device(), &model());
    assert_eq!(topic, "ferry/pi4-kitchen_01.lab/req/mobilenet_v2");
    assert_eq!(
        topics::parse_request_topic(&topic).unwrap(),
        (device(), model())
    );
    assert_eq!(
        topics::response_topic(&device()),
        "ferry/pi4-kitchen_01.lab/resp"
    );
    assert_eq!(topics::parse_response_topic("ferry/d1/resp").unwrap(), "d1");
    assert_eq!(
        topics::device_filter(&device()),
        "ferry/pi4-kitchen_01.lab/#"
    );
}

#[test]
fn malformed_request_topics_are_rejected() {
    use topics::{parse_request_topic, TopicError};
    for bad in [
        "",
        "ferry",
        "ferry/d1/req",
        "ferry/d1/req/",
        "ferry/d1/req/m/extra",
        "ferry/d1/resp/m",
        "fery/d1/req/m",
        "/ferry/d1/req/m",
        "ferry//req/m",
    ] {
        assert!(parse_request_topic(bad).is_err(), "{bad:?} accepted");
    }
    assert!(matches!(
        parse_request_topic("ferry/+/req/m"),
        Err(TopicError::Device(_))
    ));
    assert!(matches!(
        parse_request_topic("ferry/d1/req/#"),
        Err(TopicError::Model(_))
    ));
}

#[test]
fn edge_and_telemetry_topics() {
    assert_eq!(
        topics::edge_request_subscription("edges").unwrap(),
        "$share/edges/ferry/+/req/+"
    );
    assert!(topics::edge_request_subscription("a/b").is_err());
    assert_eq!(
        topics::telemetry_topic(&device(), "decisions/mobilenet_v2").unwrap(),
        "ferry/pi4-kitchen_01.lab/telemetry/decisions/mobilenet_v2"
    );
    for bad in ["", "a//b", "#", "a/+", "/a"] {
        assert!(topics::telemetry_topic(&device(), bad).is_err(), "{bad:?}");
    }
    let mut reused = String::from("old");
    topics::write_request_topic(&mut reused, &device(), &model());
    assert_eq!(reused, topics::request_topic(&device(), &model()));
}

fn quantized() -> Quantized {
    let t = Tensor::new(DType::I8, Shape::new(&[1, 3, 2, 2]).unwrap(), (0u8..12).collect()).unwrap();
    Quantized::new(&[0.0078125, 0.0078125, 0.5], &[-1, -1, 3], t).unwrap()
}

/// Encodes `req`, checks it is written in `version` at its predicted length and decodes back to
/// itself (borrowed and owned); returns the bytes.
fn assert_round_trips_in(req: &RequestRef<'_>, version: u8) -> Vec<u8> {
    let buf = encode_req(req);
    assert_eq!(buf[3], version);
    assert_eq!(buf.len(), encoded_request_len(req));
    let back = decode_req(&buf).unwrap();
    assert_eq!(&back, req);
    assert_eq!(&back.to_request().as_ref(), req);
    assert_eq!(back.identity().version, version);
    buf
}

#[test]
fn version_2_inputs_round_trip_and_originals_stay_version_1() {
    // An original image is written in version 1, byte for byte what a version-1 device sends.
    let original = encode_req(&image_request(b"img"));
    assert_eq!(original[3], 1);
    // A shaped image and a quantized tensor need version 2.
    let shaped = RequestRef { input: InputRef::ShapedImage { format: ImageFormat::Jpeg, bytes: b"\xff\xd8jpeg" }, ..image_request(&[]) };
    let q = quantized();
    let quant = RequestRef { input: InputRef::Quantized(q.as_ref()), ..image_request(&[]) };
    for req in [shaped, quant] {
        assert_round_trips_in(&req, 2);
    }
    let params: Vec<(f32, i32)> = q.as_ref().params().collect();
    assert_eq!(params, vec![(0.0078125, -1), (0.0078125, -1), (0.5, 3)]);
}

#[test]
fn a_version_2_input_in_a_version_1_message_is_malformed() {
    let q = quantized();
    let mut buf = encode_req(&RequestRef { input: InputRef::Quantized(q.as_ref()), ..image_request(&[]) });
    buf[3] = 1;
    let err = decode_req(&buf).unwrap_err();
    assert_eq!(err.error, DecodeError::UnknownCode { field: "input kind", code: 4 });
    assert!(err.identity.is_some());
}

#[test]
fn bad_quantization_parameters_are_refused() {
    let t = || Tensor::new(DType::I8, Shape::new(&[4]).unwrap(), vec![0; 4]).unwrap();
    for (scales, zeros) in [(&[0.0f32][..], &[0][..]), (&[f32::NAN][..], &[0][..]), (&[-1.0][..], &[0][..]), (&[][..], &[][..]), (&[1.0, 1.0][..], &[0][..])] {
        assert!(Quantized::new(scales, zeros, t()).is_err(), "{scales:?} {zeros:?}");
    }
    let f = Tensor::from_f32(Shape::new(&[1]).unwrap(), &[1.0]).unwrap();
    assert!(Quantized::new(&[1.0], &[0], f).is_err(), "f32 is not a quantized dtype");
    // 17 channels: too many, also when forged on the wire.
    let q = quantized();
    let mut buf = encode_req(&RequestRef { input: InputRef::Quantized(q.as_ref()), ..image_request(&[]) });
    // The input kind sits before 3 channels' parameters and the 1×3×2×2 i8 tensor.
    let tag = buf.len() - (1 + 3 * 8 + (1 + 1 + 4 * 4 + 4 + 12)) - 1;
    assert_eq!(buf[tag], 4);
    buf[tag + 1] = 17;
    assert_eq!(decode_req(&buf).unwrap_err().error, DecodeError::BadQuantization("expected 1 to 16 channels of scale and zero point"));
    // A zero scale forged on the wire.
    let mut buf = encode_req(&RequestRef { input: InputRef::Quantized(q.as_ref()), ..image_request(&[]) });
    buf[tag + 2..tag + 6].copy_from_slice(&0f32.to_le_bytes());
    assert!(matches!(decode_req(&buf).unwrap_err().error, DecodeError::BadQuantization(_)));
}

#[test]
fn a_split_input_is_version_3_and_round_trips() {
    let t = Tensor::new(DType::U8, Shape::new(&[1, 4, 1, 1]).unwrap(), vec![0, 1, 2, 255]).unwrap();
    let q = Quantized::new(&[0.05], &[7], t).unwrap();
    let req = RequestRef { input: InputRef::Split { cut: "/blocks/blocks.3/Add_output_0", tensor: q.as_ref() }, ..image_request(&[]) };
    let buf = assert_round_trips_in(&req, 3);
    assert_eq!(decode_req(&buf).unwrap().input.payload(), &[0, 1, 2, 255]);
    // The same bytes claiming version 2: kind 5 does not exist there.
    let mut old = buf.clone();
    old[3] = 2;
    assert_eq!(decode_req(&old).unwrap_err().error, DecodeError::UnknownCode { field: "input kind", code: 5 });
    // A cut name too long to encode, and one that is not UTF-8.
    let long = "x".repeat(256);
    let mut out = Vec::new();
    let too_long = RequestRef { input: InputRef::Split { cut: &long, tensor: q.as_ref() }, ..image_request(&[]) };
    assert!(matches!(encode_request(&too_long, &mut out), Err(EncodeError::TextTooLong { field: "cut", .. })));
    let name_at = buf.windows(b"/blocks".len()).position(|w| w == b"/blocks").unwrap();
    let mut bad = buf.clone();
    bad[name_at] = 0xff;
    assert_eq!(decode_req(&bad).unwrap_err().error, DecodeError::InvalidUtf8 { field: "cut" });
}
