//! The bytes Ferry takes from the network: the same input is decoded as a request (what an
//! edge receives), as a response (what a device receives), and, when it is text, as the topic
//! it came on. Properties, beyond "never a panic":
//!
//! - decoding accepts only the canonical encoding: what decodes re-encodes to the very same
//!   bytes, directly and through the owned copy ([`ferry_protocol::RequestRef::to_request`]);
//! - a request that does not decode but names its sender gets the edge's error answer, which
//!   decodes as a response to that request id with the error's status;
//! - [`ferry_protocol::peek_response_header`] agrees with a full decode;
//! - an f32 tensor input is checked against every shipped model as the edge checks it;
//! - a topic that parses is rebuilt as the same string.

use ferry_protocol::{
    decode_request, decode_response, encode_decode_failure, encode_request, encode_response,
    encoded_request_len, encoded_response_len, peek_response_header, topics, DType, EdgeTimings,
    InputRef, Limits,
};
use ferry_runtime::preprocess;

use crate::models;

/// The body.
pub fn run(data: &[u8]) {
    let limits = Limits::default();
    let mut out = Vec::new();
    request(data, &limits, &mut out);
    response(data, &limits, &mut out);
    if let Ok(text) = std::str::from_utf8(data) {
        topic(text);
    }
}

fn request(data: &[u8], limits: &Limits, out: &mut Vec<u8>) {
    match decode_request(data, limits) {
        Ok(req) => {
            assert_eq!(
                encoded_request_len(&req),
                data.len(),
                "encoded length of a decoded request"
            );
            encode_request(&req, out).expect("a decoded request encodes");
            assert_eq!(
                out.as_slice(),
                data,
                "a decoded request re-encodes to other bytes"
            );
            let owned = req.to_request();
            encode_request(&owned.as_ref(), out).expect("an owned copy encodes");
            assert_eq!(
                out.as_slice(),
                data,
                "the owned copy of a request re-encodes to other bytes"
            );
            if let InputRef::Tensor(t) = req.input {
                if t.dtype() == DType::F32 {
                    let values: Vec<f32> = t
                        .f32_values()
                        .expect("an f32 tensor has f32 values")
                        .collect();
                    assert_eq!(values.len() * 4, t.data().len());
                    let shape: Vec<usize> = t.shape().dims().iter().map(|&d| d as usize).collect();
                    for manifest in models::manifests() {
                        // Either verdict is fine; it must be a verdict.
                        let _ = preprocess::check_tensor(manifest, &shape, &values);
                    }
                }
            }
        }
        Err(failure) => {
            let to = encode_decode_failure(&failure, EdgeTimings::default(), out);
            assert_eq!(
                to,
                failure.identity.map(|i| i.device_id),
                "the answer goes to the sender"
            );
            if let Some(identity) = failure.identity {
                let answer = decode_response(out, limits)
                    .expect("the edge's answer to a bad request decodes");
                assert_eq!(answer.request_id, identity.request_id);
                assert_eq!(answer.status, failure.error.status());
                assert!(
                    !answer.detail.is_empty(),
                    "an error answer says what was wrong"
                );
            }
            assert!(!failure.to_string().is_empty());
        }
    }
}

fn response(data: &[u8], limits: &Limits, out: &mut Vec<u8>) {
    let peeked = peek_response_header(data);
    match decode_response(data, limits) {
        Ok(resp) => {
            let header = peeked.expect("a response that decodes has a readable header");
            assert_eq!(
                (header.request_id, header.status),
                (resp.request_id, resp.status)
            );
            assert_eq!(
                encoded_response_len(&resp),
                data.len(),
                "encoded length of a decoded response"
            );
            encode_response(&resp, out).expect("a decoded response encodes");
            assert_eq!(
                out.as_slice(),
                data,
                "a decoded response re-encodes to other bytes"
            );
            let owned = resp.to_response();
            encode_response(&owned.as_ref(), out).expect("an owned copy encodes");
            assert_eq!(
                out.as_slice(),
                data,
                "the owned copy of a response re-encodes to other bytes"
            );
            assert_eq!(resp.top_k.iter().count(), resp.top_k.len());
        }
        Err(failure) => {
            if let Some(header) = failure.header {
                let peeked = peeked.expect("a response error with a header has a readable header");
                assert_eq!(
                    (peeked.request_id, peeked.status),
                    (header.request_id, header.status)
                );
            }
            assert!(!failure.to_string().is_empty());
        }
    }
}

fn topic(text: &str) {
    if let Ok((device, model)) = topics::parse_request_topic(text) {
        assert_eq!(topics::request_topic(&device, &model), text);
    }
    if let Ok(device) = topics::parse_response_topic(text) {
        assert_eq!(topics::response_topic(&device), text);
    }
}
