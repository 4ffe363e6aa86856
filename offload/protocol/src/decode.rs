//! Total, allocation-free decoding. Every function here takes any byte string and returns a
//! value borrowing from it or a typed error; none of them indexes unchecked, allocates, or
//! trusts a declared length before comparing it with the bytes actually present.

use super::envelope::{
    EdgeTimings, ImageFormat, InputRef, Precision, QuantizedRef, RequestIdentity, RequestRef,
    ResponseHeader, ResponseRef, Status, TopKEntry, TopKList,
};
use super::error::{DecodeError, RequestDecodeError, ResponseDecodeError};
use super::names::{DeviceId, ModelName, NameError, MAX_NAME_LEN};
use super::tensor::{DType, Shape, TensorRef, MAX_DIMS};
use super::wire;
use super::{Limits, MessageKind, OLDEST_VERSION, PROTOCOL_VERSION};
use crate::error::TensorError;

/// A cursor over the bytes not yet read.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated { field })?;
        self.rest = tail;
        Ok(*head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A u32 length followed by that many bytes.
    fn bytes_u32(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated { field })?;
        self.take(len, field)
    }

    fn str_u8(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.u8(field)?;
        let raw = self.take(usize::from(len), field)?;
        core::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    fn name(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8(field)?);
        if len > MAX_NAME_LEN {
            // Reject before reading: a 200-byte "name" is malformed, not truncated.
            return Err(DecodeError::InvalidName {
                field,
                error: NameError::TooLong { len },
            });
        }
        self.take(len, field)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// The part of a message every version shares.
struct Prefix {
    version: u8,
    flags: u8,
    request_id: u64,
}

fn read_prefix(r: &mut Reader<'_>, expected: MessageKind) -> Result<Prefix, DecodeError> {
    // A short input that matches the magic so far is truncated; anything else is foreign.
    if !wire::MAGIC.starts_with(r.rest.get(..wire::MAGIC.len()).unwrap_or(r.rest)) {
        return Err(DecodeError::BadMagic);
    }
    r.take(wire::MAGIC.len(), "magic")?;
    let version = r.u8("version")?;
    let kind = r.u8("kind")?;
    if kind != expected.code() {
        return Err(DecodeError::WrongKind {
            expected,
            found: kind,
        });
    }
    let flags = r.u8("flags")?;
    let request_id = r.u64("request id")?;
    Ok(Prefix {
        version,
        flags,
        request_id,
    })
}

/// Checks what depends on the whole message and on the version, once the sender is known.
fn check_envelope(buf: &[u8], prefix: &Prefix, limits: &Limits) -> Result<(), DecodeError> {
    if buf.len() > limits.max_message_size {
        return Err(DecodeError::TooLarge {
            size: buf.len(),
            max: limits.max_message_size,
        });
    }
    if !(OLDEST_VERSION..=PROTOCOL_VERSION).contains(&prefix.version) {
        return Err(DecodeError::UnsupportedVersion {
            found: prefix.version,
        });
    }
    if prefix.flags != 0 {
        return Err(DecodeError::ReservedFlags(prefix.flags));
    }
    Ok(())
}

/// Decodes a request without copying or allocating: the payload, names and shape are
/// borrowed from or stored inline next to `buf`.
///
/// On error, [`RequestDecodeError::identity`] holds the sender when the version-independent
/// prefix (magic, version, kind, flags, request id, device id) was intact, so that even a
/// request of an unknown version, an oversized one, or one with a bad body can be answered.
pub fn decode_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<RequestRef<'a>, RequestDecodeError> {
    let mut r = Reader::new(buf);
    let anonymous = |error| RequestDecodeError {
        identity: None,
        error,
    };
    let prefix = read_prefix(&mut r, MessageKind::Request).map_err(anonymous)?;
    let device_raw = r.name("device id").map_err(anonymous)?;
    let device_id = DeviceId::from_bytes(device_raw).map_err(|error| {
        anonymous(DecodeError::InvalidName {
            field: "device id",
            error,
        })
    })?;
    let identity = RequestIdentity {
        request_id: prefix.request_id,
        device_id,
        version: prefix.version,
    };
    let known = |error| RequestDecodeError {
        identity: Some(identity),
        error,
    };

    check_envelope(buf, &prefix, limits).map_err(known)?;
    let body = request_body(&mut r, prefix.version).map_err(known)?;
    Ok(RequestRef {
        request_id: prefix.request_id,
        device_id,
        model: body.model,
        precision: body.precision,
        deadline_ms: body.deadline_ms,
        sent_at_us: body.sent_at_us,
        input: body.input,
    })
}

struct RequestBody<'a> {
    sent_at_us: u64,
    deadline_ms: Option<u32>,
    precision: Precision,
    model: ModelName,
    input: InputRef<'a>,
}

/// A quantized tensor: its channels' parameters, then the tensor.
fn quantized<'a>(r: &mut Reader<'a>) -> Result<QuantizedRef<'a>, DecodeError> {
    let channels = usize::from(r.u8("quantization channels")?);
    if channels == 0 || channels > wire::MAX_QUANT_CHANNELS {
        return Err(DecodeError::BadQuantization("expected 1 to 16 channels of scale and zero point"));
    }
    let params = r.take(channels * wire::QUANT_PARAM_LEN, "quantization parameters")?;
    QuantizedRef::new(params, tensor(r, "quantized tensor")?)
}

fn request_body<'a>(r: &mut Reader<'a>, version: u8) -> Result<RequestBody<'a>, DecodeError> {
    let sent_at_us = r.u64("sent-at time")?;
    let deadline = r.u32("deadline")?;
    let precision_code = r.u8("precision")?;
    let precision = Precision::from_code(precision_code).ok_or(DecodeError::UnknownCode {
        field: "precision",
        code: precision_code,
    })?;
    let model_raw = r.name("model name")?;
    let model = ModelName::from_bytes(model_raw).map_err(|error| DecodeError::InvalidName {
        field: "model name",
        error,
    })?;
    let input = match r.u8("input kind")? {
        wire::INPUT_IMAGE => {
            let (format, bytes) = image(r)?;
            InputRef::Image { format, bytes }
        }
        wire::INPUT_TENSOR => InputRef::Tensor(tensor(r, "input tensor")?),
        wire::INPUT_SHAPED_IMAGE if version >= 2 => {
            let (format, bytes) = image(r)?;
            InputRef::ShapedImage { format, bytes }
        }
        wire::INPUT_QUANTIZED if version >= 2 => InputRef::Quantized(quantized(r)?),
        wire::INPUT_SPLIT if version >= 3 => {
            let cut = r.str_u8("cut")?;
            InputRef::Split { cut, tensor: quantized(r)? }
        }
        code => {
            return Err(DecodeError::UnknownCode {
                field: "input kind",
                code,
            })
        }
    };
    r.finish()?;
    Ok(RequestBody {
        sent_at_us,
        deadline_ms: (deadline != wire::NO_DEADLINE).then_some(deadline),
        precision,
        model,
        input,
    })
}

fn image<'a>(r: &mut Reader<'a>) -> Result<(ImageFormat, &'a [u8]), DecodeError> {
    let code = r.u8("image format")?;
    let format = ImageFormat::from_code(code).ok_or(DecodeError::UnknownCode {
        field: "image format",
        code,
    })?;
    Ok((format, r.bytes_u32("image")?))
}

fn tensor<'a>(r: &mut Reader<'a>, field: &'static str) -> Result<TensorRef<'a>, DecodeError> {
    let code = r.u8(field)?;
    let dtype = DType::from_code(code).ok_or(DecodeError::UnknownCode {
        field: "dtype",
        code,
    })?;
    let ndim = usize::from(r.u8(field)?);
    if ndim > MAX_DIMS {
        return Err(TensorError::TooManyDims { ndim }.into());
    }
    let mut dims = [0u32; MAX_DIMS];
    for d in dims.iter_mut().take(ndim) {
        *d = r.u32(field)?;
    }
    let shape = Shape::new(dims.get(..ndim).unwrap_or(&[]))?;
    let expected = shape.byte_len(dtype).ok_or(TensorError::Overflow)?;
    let declared = r.u32(field)?;
    // Compare the declared length with the shape before trusting it to read anything.
    if usize::try_from(declared).ok() != Some(expected) {
        return Err(TensorError::LengthMismatch {
            expected,
            actual: usize::try_from(declared).unwrap_or(usize::MAX),
        }
        .into());
    }
    let data = r.take(expected, field)?;
    Ok(TensorRef::new(dtype, shape, data)?)
}

/// Reads one top-k entry off the front of `bytes`; used by the decoder to validate and by
/// [`TopKIter`](super::TopKIter) to walk validated bytes.
pub(crate) fn split_top_k_entry(bytes: &[u8]) -> Result<(TopKEntry<'_>, &[u8]), DecodeError> {
    let mut r = Reader::new(bytes);
    let class = r.u32("top-k class")?;
    let score = f32::from_bits(r.u32("top-k score")?);
    let label = r.str_u8("top-k label")?;
    Ok((
        TopKEntry {
            class,
            score,
            label,
        },
        r.rest,
    ))
}

/// Reads just the version-independent header of a response: works on a response of any
/// version, so a device can read the status of an answer it cannot otherwise decode.
pub fn peek_response_header(buf: &[u8]) -> Result<ResponseHeader, DecodeError> {
    let mut r = Reader::new(buf);
    let prefix = read_prefix(&mut r, MessageKind::Response)?;
    let code = r.u8("status")?;
    let status = Status::from_code(code).ok_or(DecodeError::UnknownCode {
        field: "status",
        code,
    })?;
    Ok(ResponseHeader {
        version: prefix.version,
        request_id: prefix.request_id,
        status,
    })
}

/// Decodes a response without copying or allocating: detail, labels and output tensor are
/// borrowed from `buf`.
///
/// On error, [`ResponseDecodeError::header`] holds request id and status when the
/// version-independent prefix was intact.
pub fn decode_response<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<ResponseRef<'a>, ResponseDecodeError> {
    let mut r = Reader::new(buf);
    let anonymous = |error| ResponseDecodeError {
        header: None,
        error,
    };
    let prefix = read_prefix(&mut r, MessageKind::Response).map_err(anonymous)?;
    let code = r.u8("status").map_err(anonymous)?;
    let status = Status::from_code(code)
        .ok_or(DecodeError::UnknownCode {
            field: "status",
            code,
        })
        .map_err(anonymous)?;
    let header = ResponseHeader {
        version: prefix.version,
        request_id: prefix.request_id,
        status,
    };
    let known = |error| ResponseDecodeError {
        header: Some(header),
        error,
    };

    check_envelope(buf, &prefix, limits).map_err(known)?;
    // Responses exist in one layout, written as version 1 by every edge (see
    // `wire::RESPONSE_VERSION`): a response claiming a later version is not one this build
    // defines (and would not re-encode to its own bytes).
    if prefix.version > super::wire::RESPONSE_VERSION {
        return Err(known(DecodeError::UnsupportedVersion { found: prefix.version }));
    }
    response_body(&mut r, prefix.request_id, status).map_err(known)
}

fn response_body<'a>(
    r: &mut Reader<'a>,
    request_id: u64,
    status: Status,
) -> Result<ResponseRef<'a>, DecodeError> {
    let timings = EdgeTimings {
        queue_wait_us: r.u32("queue wait")?,
        compute_us: r.u32("compute time")?,
        batch_size: r.u16("batch size")?,
        queue_depth: r.u32("queue depth")?,
    };
    let detail = r.str_u8("detail")?;
    let count = r.u8("top-k count")?;
    let top_k_start = r.rest;
    for _ in 0..count {
        let (_, tail) = split_top_k_entry(r.rest)?;
        r.rest = tail;
    }
    let consumed = top_k_start.len() - r.rest.len();
    let top_k = TopKList::from_wire(count, top_k_start.get(..consumed).unwrap_or(&[]));
    let output = match r.u8("output kind")? {
        wire::OUTPUT_NONE => None,
        wire::OUTPUT_TENSOR => Some(tensor(r, "output tensor")?),
        code => {
            return Err(DecodeError::UnknownCode {
                field: "output kind",
                code,
            })
        }
    };
    r.finish()?;
    Ok(ResponseRef {
        request_id,
        status,
        detail,
        timings,
        top_k,
        output,
    })
}
