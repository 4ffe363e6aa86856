//! Encoding envelopes into a caller-provided buffer.
//!
//! Every encoder replaces the buffer's contents (`clear` then write), reserving exactly the
//! message length first, so a device or edge can reuse one `Vec<u8>` for every message and
//! reach a steady state with no allocation at all. Validation happens before the first byte
//! is written: on error the buffer is left empty.

use core::fmt::Write as _;

use super::envelope::{EdgeTimings, ImageFormat, InputRef, RequestRef, ResponseRef, Status};
use super::error::{EncodeError, RequestDecodeError};
use super::names::DeviceId;
use super::tensor::TensorRef;
use super::wire;
use super::MessageKind;

/// Most bytes a top-k label or a detail string may have.
pub const MAX_TEXT_LEN: usize = 255;

fn tensor_len(t: &TensorRef<'_>) -> usize {
    // dtype, ndim, dims, data length, data
    1 + 1 + 4 * t.shape().ndim() + 4 + t.data().len()
}

fn check_payload(len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::PayloadTooLarge { len })
}

/// Exact encoded length of a request.
pub fn encoded_request_len(req: &RequestRef<'_>) -> usize {
    let input = match &req.input {
        InputRef::Image { bytes, .. } | InputRef::ShapedImage { bytes, .. } => 1 + 4 + bytes.len(),
        InputRef::Tensor(t) => tensor_len(t),
        InputRef::Quantized(q) => 1 + q.param_bytes().len() + tensor_len(&q.tensor),
        InputRef::Split { cut, tensor } => 1 + cut.len() + 1 + tensor.param_bytes().len() + tensor_len(&tensor.tensor),
    };
    wire::PREFIX_LEN + 1 + req.device_id.as_bytes().len() // prefix, device id
        + 8 + 4 + 1 // sent_at, deadline, precision
        + 1 + req.model.as_bytes().len()
        + 1 + input // input tag + input
}

/// Exact encoded length of a response (meaningful only if it encodes without error).
pub fn encoded_response_len(resp: &ResponseRef<'_>) -> usize {
    let top_k: usize = resp.top_k.iter().map(|e| 4 + 4 + 1 + e.label.len()).sum();
    let output = resp.output.as_ref().map_or(0, tensor_len);
    wire::PREFIX_LEN + 1 // prefix, status
        + wire::TIMINGS_LEN
        + 1 + resp.detail.len()
        + 1 + top_k
        + 1 + output
}

fn put_prefix(out: &mut Vec<u8>, kind: MessageKind, version: u8, request_id: u64) {
    out.extend_from_slice(&wire::MAGIC);
    out.push(version);
    out.push(kind.code());
    out.push(0); // flags: none defined in versions 1 and 2
    out.extend_from_slice(&request_id.to_le_bytes());
}

fn put_tensor(out: &mut Vec<u8>, t: &TensorRef<'_>, data_len: u32) {
    out.push(t.dtype().code());
    // Shape guarantees ndim <= MAX_DIMS (8).
    out.push(t.shape().ndim() as u8);
    for d in t.shape().dims() {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(t.data());
}

/// Encodes a request into `out` (replacing its contents); returns the message length.
pub fn encode_request(req: &RequestRef<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    out.clear();
    let payload_len = check_payload(req.input.payload().len())?;
    if let InputRef::Split { cut, .. } = &req.input {
        if cut.len() > usize::from(u8::MAX) {
            return Err(EncodeError::TextTooLong { field: "cut", len: cut.len() });
        }
    }
    let len = encoded_request_len(req);
    out.reserve(len);

    // The oldest version that carries the input, so that an older edge still reads it.
    put_prefix(out, MessageKind::Request, req.input.min_version(), req.request_id);
    put_name(out, req.device_id.as_bytes());
    out.extend_from_slice(&req.sent_at_us.to_le_bytes());
    out.extend_from_slice(&req.deadline_ms.unwrap_or(wire::NO_DEADLINE).to_le_bytes());
    out.push(req.precision.code());
    put_name(out, req.model.as_bytes());
    match &req.input {
        InputRef::Image { format, bytes } => put_image(out, wire::INPUT_IMAGE, *format, payload_len, bytes),
        InputRef::Tensor(t) => {
            out.push(wire::INPUT_TENSOR);
            put_tensor(out, t, payload_len);
        }
        InputRef::ShapedImage { format, bytes } => {
            put_image(out, wire::INPUT_SHAPED_IMAGE, *format, payload_len, bytes)
        }
        InputRef::Quantized(q) => {
            out.push(wire::INPUT_QUANTIZED);
            put_quantized(out, q, payload_len);
        }
        InputRef::Split { cut, tensor } => {
            out.push(wire::INPUT_SPLIT);
            // Checked by `encode_request` before anything was written: at most 255 bytes.
            out.push(cut.len() as u8);
            out.extend_from_slice(cut.as_bytes());
            put_quantized(out, tensor, payload_len);
        }
    }
    debug_assert_eq!(out.len(), len);
    Ok(out.len())
}

/// A quantized tensor's parameters and values.
fn put_quantized(out: &mut Vec<u8>, q: &crate::QuantizedRef<'_>, payload_len: u32) {
    // Validated at construction: 1 to 16 channels.
    out.push((q.param_bytes().len() / wire::QUANT_PARAM_LEN) as u8);
    out.extend_from_slice(q.param_bytes());
    put_tensor(out, &q.tensor, payload_len);
}

/// An image input: its tag (original or shaped), format, length and bytes.
fn put_image(out: &mut Vec<u8>, tag: u8, format: ImageFormat, len: u32, bytes: &[u8]) {
    out.push(tag);
    out.push(format.code());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_name(out: &mut Vec<u8>, name: &[u8]) {
    // Names are validated to at most 64 bytes.
    out.push(name.len() as u8);
    out.extend_from_slice(name);
}

fn text_len(field: &'static str, s: &str) -> Result<u8, EncodeError> {
    u8::try_from(s.len()).map_err(|_| EncodeError::TextTooLong {
        field,
        len: s.len(),
    })
}

/// Encodes a response into `out` (replacing its contents); returns the message length.
pub fn encode_response(resp: &ResponseRef<'_>, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    out.clear();
    let detail_len = text_len("detail", resp.detail)?;
    let count = u8::try_from(resp.top_k.len()).map_err(|_| EncodeError::TooManyTopK {
        count: resp.top_k.len(),
    })?;
    for e in resp.top_k.iter() {
        text_len("top-k label", e.label)?;
    }
    let output_len = resp
        .output
        .as_ref()
        .map(|t| check_payload(t.data().len()))
        .transpose()?;
    let len = encoded_response_len(resp);
    out.reserve(len);

    put_prefix(out, MessageKind::Response, wire::RESPONSE_VERSION, resp.request_id);
    out.push(resp.status.code());
    put_timings(out, &resp.timings);
    out.push(detail_len);
    out.extend_from_slice(resp.detail.as_bytes());
    out.push(count);
    for e in resp.top_k.iter() {
        out.extend_from_slice(&e.class.to_le_bytes());
        out.extend_from_slice(&e.score.to_le_bytes());
        // Checked above to fit a u8.
        out.push(e.label.len() as u8);
        out.extend_from_slice(e.label.as_bytes());
    }
    match (&resp.output, output_len) {
        (Some(t), Some(data_len)) => {
            out.push(wire::OUTPUT_TENSOR);
            put_tensor(out, t, data_len);
        }
        _ => out.push(wire::OUTPUT_NONE),
    }
    debug_assert_eq!(out.len(), len);
    Ok(out.len())
}

fn put_timings(out: &mut Vec<u8>, t: &EdgeTimings) {
    out.extend_from_slice(&t.queue_wait_us.to_le_bytes());
    out.extend_from_slice(&t.compute_us.to_le_bytes());
    out.extend_from_slice(&t.batch_size.to_le_bytes());
    out.extend_from_slice(&t.queue_depth.to_le_bytes());
}

/// Longest prefix of `s` that is at most [`MAX_TEXT_LEN`] bytes and ends on a char boundary.
fn clip(s: &str) -> &str {
    if s.len() <= MAX_TEXT_LEN {
        return s;
    }
    let mut end = MAX_TEXT_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encodes an error response (no top-k, no output) into `out`; a `detail` longer than
/// [`MAX_TEXT_LEN`] bytes is cut at a char boundary. Cannot fail. Returns the length.
pub fn encode_error_response(
    request_id: u64,
    status: Status,
    detail: &str,
    timings: EdgeTimings,
    out: &mut Vec<u8>,
) -> usize {
    let resp = ResponseRef::error(request_id, status, clip(detail), timings);
    // An error response with a clipped detail, no top-k and no output has nothing left that
    // could fail to encode.
    encode_response(&resp, out).unwrap_or(0)
}

/// Answers a request that failed to decode: if its sender is known, encodes an error
/// response (status from [`DecodeError::status`](super::DecodeError::status), detail from
/// the error's message) into `out` and returns the device to send it to (on
/// [`response_topic`](super::topics::response_topic)). Returns `None` when nobody can be
/// told: log and count it then. Allocates nothing beyond `out`'s growth.
pub fn encode_decode_failure(
    failure: &RequestDecodeError,
    timings: EdgeTimings,
    out: &mut Vec<u8>,
) -> Option<DeviceId> {
    let identity = failure.identity?;
    let mut detail = TextBuf::default();
    // TextBuf never fails, it truncates.
    let _ = write!(detail, "{}", failure.error);
    encode_error_response(
        identity.request_id,
        failure.error.status(),
        detail.as_str(),
        timings,
        out,
    );
    Some(identity.device_id)
}

/// A fixed-capacity text buffer that silently truncates (at char boundaries).
struct TextBuf {
    bytes: [u8; MAX_TEXT_LEN],
    len: usize,
}

impl Default for TextBuf {
    fn default() -> Self {
        TextBuf {
            bytes: [0; MAX_TEXT_LEN],
            len: 0,
        }
    }
}

impl TextBuf {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            let n = c.len_utf8();
            if self.len + n > MAX_TEXT_LEN {
                break;
            }
            c.encode_utf8(&mut self.bytes[self.len..self.len + n]);
            self.len += n;
        }
        Ok(())
    }
}
