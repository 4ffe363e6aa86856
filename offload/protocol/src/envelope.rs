//! The request and response envelopes, in borrowed (`…Ref<'a>`, zero-copy) and owned forms.

use super::names::{DeviceId, ModelName};
use super::tensor::{Tensor, TensorRef};

/// Numeric precision a request asks the edge to run its model at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Precision {
    /// Whatever the edge serves for this model.
    #[default]
    Any,
    /// 32-bit float.
    Fp32,
    /// 16-bit float.
    Fp16,
    /// 8-bit integer quantized.
    Int8,
}

impl Precision {
    /// Wire code.
    pub const fn code(self) -> u8 {
        match self {
            Precision::Any => 0,
            Precision::Fp32 => 1,
            Precision::Fp16 => 2,
            Precision::Int8 => 3,
        }
    }

    /// The precision with this wire code, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Precision::Any,
            1 => Precision::Fp32,
            2 => Precision::Fp16,
            3 => Precision::Int8,
            _ => return None,
        })
    }
}

/// Encoding of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ImageFormat {
    /// Not stated: the edge sniffs the bytes.
    #[default]
    Unspecified,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
}

impl ImageFormat {
    /// Wire code.
    pub const fn code(self) -> u8 {
        match self {
            ImageFormat::Unspecified => 0,
            ImageFormat::Jpeg => 1,
            ImageFormat::Png => 2,
        }
    }

    /// The format with this wire code, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => ImageFormat::Unspecified,
            1 => ImageFormat::Jpeg,
            2 => ImageFormat::Png,
            _ => return None,
        })
    }
}

/// A request's input, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRef<'a> {
    /// Encoded image bytes (JPEG, PNG, …), preprocessed by the edge.
    Image {
        /// How the bytes are encoded.
        format: ImageFormat,
        /// The encoded image.
        bytes: &'a [u8],
    },
    /// A ready input tensor (or, in split mode, an intermediate activation).
    Tensor(TensorRef<'a>),
    /// Version 2: encoded image bytes already shaped to the model's input by the device; the
    /// edge only normalises them.
    ShapedImage {
        /// How the bytes are encoded.
        format: ImageFormat,
        /// The encoded image.
        bytes: &'a [u8],
    },
    /// Version 2: a tensor of i8 or u8 values with per-channel scale and zero point.
    Quantized(QuantizedRef<'a>),
    /// Version 3: split inference: the tensor named `cut` in the model's graph, quantized,
    /// for the edge to run the rest of the model on.
    Split {
        /// The crossing tensor's name in the model graph (at most 255 bytes).
        cut: &'a str,
        /// Its values.
        tensor: QuantizedRef<'a>,
    },
}

/// A quantized tensor, borrowed: `value = scale[c] × (q − zero_point[c])` for the values of
/// channel `c` (dimension 1 of an NCHW tensor; one entry for all channels if only one given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizedRef<'a> {
    /// `channels × (scale f32 LE, zero point i32 LE)`, validated by the decoder.
    params: &'a [u8],
    /// The quantized values.
    pub tensor: TensorRef<'a>,
}

impl<'a> QuantizedRef<'a> {
    /// From raw parameters (`channels × 8` bytes) and the tensor; an error if the parameters are
    /// not whole, are more than [`crate::wire::MAX_QUANT_CHANNELS`] or none, hold a scale that is
    /// not finite and positive, or the tensor is not i8/u8.
    pub fn new(params: &'a [u8], tensor: TensorRef<'a>) -> Result<Self, crate::DecodeError> {
        use crate::wire::{MAX_QUANT_CHANNELS, QUANT_PARAM_LEN};
        use crate::DecodeError::BadQuantization;
        if params.is_empty() || !params.len().is_multiple_of(QUANT_PARAM_LEN) || params.len() / QUANT_PARAM_LEN > MAX_QUANT_CHANNELS {
            return Err(BadQuantization("expected 1 to 16 channels of scale and zero point"));
        }
        if !matches!(tensor.dtype(), crate::DType::I8 | crate::DType::U8) {
            return Err(BadQuantization("the tensor's dtype must be i8 or u8"));
        }
        let q = QuantizedRef { params, tensor };
        if q.params().any(|(scale, _)| !(scale.is_finite() && scale > 0.0)) {
            return Err(BadQuantization("every scale must be finite and positive"));
        }
        Ok(q)
    }

    /// The channels' `(scale, zero point)`.
    pub fn params(&self) -> impl Iterator<Item = (f32, i32)> + 'a {
        self.params.chunks_exact(crate::wire::QUANT_PARAM_LEN).map(|c| {
            let scale = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let zero = i32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            (scale, zero)
        })
    }

    /// The raw parameter bytes.
    pub fn param_bytes(&self) -> &'a [u8] {
        self.params
    }

    /// Copies into an owned [`Quantized`].
    pub fn to_quantized(&self) -> Quantized {
        Quantized { params: self.params.to_vec(), tensor: self.tensor.to_tensor() }
    }
}

/// A quantized tensor, owned (see [`QuantizedRef`]); its parameters are kept in wire layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantized {
    params: Vec<u8>,
    /// The values, i8 or u8.
    pub tensor: Tensor,
}

impl Quantized {
    /// From per-channel scales and zero points (the same count, 1 to 16) and an i8/u8 tensor,
    /// checked as the decoder checks them.
    pub fn new(scales: &[f32], zero_points: &[i32], tensor: Tensor) -> Result<Quantized, crate::DecodeError> {
        if scales.len() != zero_points.len() {
            return Err(crate::DecodeError::BadQuantization("as many zero points as scales"));
        }
        let params: Vec<u8> = scales.iter().zip(zero_points).flat_map(|(s, z)| s.to_le_bytes().into_iter().chain(z.to_le_bytes())).collect();
        QuantizedRef::new(&params, tensor.as_ref())?;
        Ok(Quantized { params, tensor })
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> QuantizedRef<'_> {
        QuantizedRef { params: &self.params, tensor: self.tensor.as_ref() }
    }
}

impl<'a> InputRef<'a> {
    /// The payload bytes (image or tensor data).
    pub fn payload(&self) -> &'a [u8] {
        match self {
            InputRef::Image { bytes, .. } | InputRef::ShapedImage { bytes, .. } => bytes,
            InputRef::Tensor(t) => t.data(),
            InputRef::Quantized(q) | InputRef::Split { tensor: q, .. } => q.tensor.data(),
        }
    }

    /// The oldest protocol version that carries this input: what a request holding it is
    /// written in.
    pub fn min_version(&self) -> u8 {
        match self {
            InputRef::Image { .. } | InputRef::Tensor(_) => 1,
            InputRef::ShapedImage { .. } | InputRef::Quantized(_) => 2,
            InputRef::Split { .. } => 3,
        }
    }

    /// Copies into an owned [`Input`].
    pub fn to_input(&self) -> Input {
        match self {
            InputRef::Image { format, bytes } => Input::Image {
                format: *format,
                bytes: bytes.to_vec(),
            },
            InputRef::Tensor(t) => Input::Tensor(t.to_tensor()),
            InputRef::ShapedImage { format, bytes } => Input::ShapedImage {
                format: *format,
                bytes: bytes.to_vec(),
            },
            InputRef::Quantized(q) => Input::Quantized(q.to_quantized()),
            InputRef::Split { cut, tensor } => Input::Split { cut: cut.to_string(), tensor: tensor.to_quantized() },
        }
    }
}

/// A request's input, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Encoded image bytes.
    Image {
        /// How the bytes are encoded.
        format: ImageFormat,
        /// The encoded image.
        bytes: Vec<u8>,
    },
    /// A ready input tensor.
    Tensor(Tensor),
    /// Version 2: an encoded image shaped to the model's input.
    ShapedImage {
        /// How the bytes are encoded.
        format: ImageFormat,
        /// The encoded image.
        bytes: Vec<u8>,
    },
    /// Version 2: a quantized tensor.
    Quantized(Quantized),
    /// Version 3: a split inference's crossing tensor (see [`InputRef::Split`]).
    Split {
        /// The crossing tensor's name in the model graph.
        cut: String,
        /// Its values.
        tensor: Quantized,
    },
}

impl Input {
    /// A borrowed view.
    pub fn as_ref(&self) -> InputRef<'_> {
        match self {
            Input::Image { format, bytes } => InputRef::Image {
                format: *format,
                bytes,
            },
            Input::Tensor(t) => InputRef::Tensor(t.as_ref()),
            Input::ShapedImage { format, bytes } => InputRef::ShapedImage {
                format: *format,
                bytes,
            },
            Input::Quantized(q) => InputRef::Quantized(q.as_ref()),
            Input::Split { cut, tensor } => InputRef::Split { cut, tensor: tensor.as_ref() },
        }
    }
}

/// Who sent a request and which one it is: enough to address an error response. Recovered
/// even from a request whose body is bad, when its version-independent prefix is intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestIdentity {
    /// The request id chosen by the device.
    pub request_id: u64,
    /// The sending device.
    pub device_id: DeviceId,
    /// The protocol version byte the request carried.
    pub version: u8,
}

/// An inference request, borrowing its payload. Decoding produces one without allocating;
/// a device builds one around its own buffers to encode it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRef<'a> {
    /// Device-chosen id, echoed in the response.
    pub request_id: u64,
    /// The sending device.
    pub device_id: DeviceId,
    /// The model to run.
    pub model: ModelName,
    /// The precision wanted.
    pub precision: Precision,
    /// Time budget in ms, counted from `sent_at_us`; `None` for no deadline. On the wire
    /// `u32::MAX` means none, so `Some(u32::MAX)` (≈ 49 days) decodes as `None`.
    pub deadline_ms: Option<u32>,
    /// Wall-clock send time, µs since the Unix epoch (device clock).
    pub sent_at_us: u64,
    /// The input.
    pub input: InputRef<'a>,
}

/// This host's wall clock, µs since the Unix epoch (0 before it): what `sent_at_us` holds.
/// Only for stamping and reporting skew: devices and edges do not share a clock, so a deadline
/// is a budget counted on the receiver's own clock, never an absolute time.
pub fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl RequestRef<'_> {
    /// The identity an error response is addressed with.
    pub fn identity(&self) -> RequestIdentity {
        RequestIdentity {
            request_id: self.request_id,
            device_id: self.device_id,
            version: self.input.min_version(),
        }
    }

    /// Copies into an owned [`Request`].
    pub fn to_request(&self) -> Request {
        Request {
            request_id: self.request_id,
            device_id: self.device_id,
            model: self.model,
            precision: self.precision,
            deadline_ms: self.deadline_ms,
            sent_at_us: self.sent_at_us,
            input: self.input.to_input(),
        }
    }
}

/// An inference request, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Device-chosen id, echoed in the response.
    pub request_id: u64,
    /// The sending device.
    pub device_id: DeviceId,
    /// The model to run.
    pub model: ModelName,
    /// The precision wanted.
    pub precision: Precision,
    /// Time budget in ms from `sent_at_us`; `None` for no deadline.
    pub deadline_ms: Option<u32>,
    /// Wall-clock send time, µs since the Unix epoch.
    pub sent_at_us: u64,
    /// The input.
    pub input: Input,
}

impl Request {
    /// A borrowed view, e.g. to encode it.
    pub fn as_ref(&self) -> RequestRef<'_> {
        RequestRef {
            request_id: self.request_id,
            device_id: self.device_id,
            model: self.model,
            precision: self.precision,
            deadline_ms: self.deadline_ms,
            sent_at_us: self.sent_at_us,
            input: self.input.as_ref(),
        }
    }
}

/// Outcome of a request, as the edge reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Ran; the response carries top-k and/or an output tensor.
    Ok,
    /// The edge's queue is full; try later or run locally.
    Busy,
    /// The request's protocol version is not one the edge speaks; the response's own version
    /// byte says which one it does.
    UnsupportedVersion,
    /// The request could not be decoded.
    Malformed,
    /// The request exceeds the edge's maximum message size.
    TooLarge,
    /// The edge does not serve the requested model (or not at the requested precision).
    UnknownModel,
    /// The deadline had passed before the edge could run it.
    DeadlineExceeded,
    /// The edge failed while running it.
    Internal,
}

impl Status {
    /// Wire code.
    pub const fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Busy => 1,
            Status::UnsupportedVersion => 2,
            Status::Malformed => 3,
            Status::TooLarge => 4,
            Status::UnknownModel => 5,
            Status::DeadlineExceeded => 6,
            Status::Internal => 7,
        }
    }

    /// The status with this wire code, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::Busy,
            2 => Status::UnsupportedVersion,
            3 => Status::Malformed,
            4 => Status::TooLarge,
            5 => Status::UnknownModel,
            6 => Status::DeadlineExceeded,
            7 => Status::Internal,
            _ => return None,
        })
    }

    /// Snake-case name, for logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Busy => "busy",
            Status::UnsupportedVersion => "unsupported_version",
            Status::Malformed => "malformed",
            Status::TooLarge => "too_large",
            Status::UnknownModel => "unknown_model",
            Status::DeadlineExceeded => "deadline_exceeded",
            Status::Internal => "internal",
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The edge's own measurements for one request, sent back with every response so the
/// device's estimators can model the edge's queue and compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EdgeTimings {
    /// Time between the edge receiving the request and its batch starting, µs.
    pub queue_wait_us: u32,
    /// Time the batch that held this request took to run, µs.
    pub compute_us: u32,
    /// Number of requests in that batch.
    pub batch_size: u16,
    /// Requests waiting in the edge's queue when this response was sent.
    pub queue_depth: u32,
}

/// One top-k entry, borrowing its label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopKEntry<'a> {
    /// Class index.
    pub class: u32,
    /// Score (probability or logit, as the model reports).
    pub score: f32,
    /// Human-readable label (≤ 255 bytes of UTF-8; may be empty).
    pub label: &'a str,
}

impl TopKEntry<'_> {
    /// Copies into an owned [`TopK`].
    pub fn to_top_k(&self) -> TopK {
        TopK {
            class: self.class,
            score: self.score,
            label: self.label.to_owned(),
        }
    }
}

/// One top-k entry, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    /// Class index.
    pub class: u32,
    /// Score.
    pub score: f32,
    /// Label.
    pub label: String,
}

impl TopK {
    /// A borrowed view.
    pub fn as_entry(&self) -> TopKEntry<'_> {
        TopKEntry {
            class: self.class,
            score: self.score,
            label: &self.label,
        }
    }
}

/// A list of top-k entries that is either still in its validated wire form (after decoding,
/// zero-copy) or a slice of entries (to encode).
#[derive(Debug, Clone, Copy)]
pub struct TopKList<'a>(TopKSource<'a>);

#[derive(Debug, Clone, Copy)]
enum TopKSource<'a> {
    /// Validated wire bytes holding `count` entries.
    Wire {
        count: u8,
        bytes: &'a [u8],
    },
    Entries(&'a [TopKEntry<'a>]),
    Owned(&'a [TopK]),
}

impl<'a> TopKList<'a> {
    /// No entries.
    pub const EMPTY: TopKList<'static> = TopKList(TopKSource::Entries(&[]));

    /// Entries to encode.
    pub const fn from_entries(entries: &'a [TopKEntry<'a>]) -> Self {
        TopKList(TopKSource::Entries(entries))
    }

    /// Owned entries to encode.
    pub const fn from_owned(entries: &'a [TopK]) -> Self {
        TopKList(TopKSource::Owned(entries))
    }

    /// Wire bytes already checked by the decoder to hold exactly `count` well-formed entries.
    pub(crate) const fn from_wire(count: u8, bytes: &'a [u8]) -> Self {
        TopKList(TopKSource::Wire { count, bytes })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match self.0 {
            TopKSource::Wire { count, .. } => usize::from(count),
            TopKSource::Entries(e) => e.len(),
            TopKSource::Owned(e) => e.len(),
        }
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, in order (best first, as the edge sent them).
    pub fn iter(&self) -> TopKIter<'a> {
        TopKIter(match self.0 {
            TopKSource::Wire { bytes, .. } => IterSource::Wire(bytes),
            TopKSource::Entries(e) => IterSource::Entries(e.iter()),
            TopKSource::Owned(e) => IterSource::Owned(e.iter()),
        })
    }

    /// Copies into owned entries.
    pub fn to_vec(&self) -> Vec<TopK> {
        self.iter().map(|e| e.to_top_k()).collect()
    }
}

impl PartialEq for TopKList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a> IntoIterator for TopKList<'a> {
    type Item = TopKEntry<'a>;
    type IntoIter = TopKIter<'a>;
    fn into_iter(self) -> TopKIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`TopKList`].
#[derive(Debug, Clone)]
pub struct TopKIter<'a>(IterSource<'a>);

#[derive(Debug, Clone)]
enum IterSource<'a> {
    Wire(&'a [u8]),
    Entries(core::slice::Iter<'a, TopKEntry<'a>>),
    Owned(core::slice::Iter<'a, TopK>),
}

impl<'a> Iterator for TopKIter<'a> {
    type Item = TopKEntry<'a>;
    fn next(&mut self) -> Option<TopKEntry<'a>> {
        match &mut self.0 {
            IterSource::Wire(rest) => {
                // The decoder validated these bytes; a parse failure here just ends iteration.
                let (entry, tail) = super::decode::split_top_k_entry(rest).ok()?;
                *rest = tail;
                Some(entry)
            }
            IterSource::Entries(it) => it.next().copied(),
            IterSource::Owned(it) => it.next().map(TopK::as_entry),
        }
    }
}

/// The version-independent start of a response: readable whatever version sent it, so a
/// device always learns the status of its request (notably [`Status::UnsupportedVersion`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseHeader {
    /// The version the edge speaks.
    pub version: u8,
    /// The request this answers.
    pub request_id: u64,
    /// Its outcome.
    pub status: Status,
}

/// A response, borrowing its labels, detail and output tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseRef<'a> {
    /// The request this answers.
    pub request_id: u64,
    /// Outcome.
    pub status: Status,
    /// Human-readable detail for a non-ok status (≤ 255 bytes of UTF-8; may be empty).
    pub detail: &'a str,
    /// The edge's timings.
    pub timings: EdgeTimings,
    /// Top-k classes, best first (may be empty).
    pub top_k: TopKList<'a>,
    /// Raw output tensor, if the edge sends one.
    pub output: Option<TensorRef<'a>>,
}

impl<'a> ResponseRef<'a> {
    /// An error response with no result.
    pub fn error(request_id: u64, status: Status, detail: &'a str, timings: EdgeTimings) -> Self {
        ResponseRef {
            request_id,
            status,
            detail,
            timings,
            top_k: TopKList::EMPTY,
            output: None,
        }
    }

    /// Copies into an owned [`Response`].
    pub fn to_response(&self) -> Response {
        Response {
            request_id: self.request_id,
            status: self.status,
            detail: self.detail.to_owned(),
            timings: self.timings,
            top_k: self.top_k.to_vec(),
            output: self.output.map(|t| t.to_tensor()),
        }
    }
}

/// A response, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The request this answers.
    pub request_id: u64,
    /// Outcome.
    pub status: Status,
    /// Detail for a non-ok status.
    pub detail: String,
    /// The edge's timings.
    pub timings: EdgeTimings,
    /// Top-k classes, best first.
    pub top_k: Vec<TopK>,
    /// Raw output tensor.
    pub output: Option<Tensor>,
}

impl Response {
    /// A borrowed view, e.g. to encode it.
    pub fn as_ref(&self) -> ResponseRef<'_> {
        ResponseRef {
            request_id: self.request_id,
            status: self.status,
            detail: &self.detail,
            timings: self.timings,
            top_k: TopKList::from_owned(&self.top_k),
            output: self.output.as_ref().map(Tensor::as_ref),
        }
    }
}
