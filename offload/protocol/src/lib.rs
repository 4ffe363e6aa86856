//! `ferry-protocol`: the wire protocol between devices and edge servers: one request envelope, one response
//! envelope, a binary little-endian layout, and MQTT topic helpers.
//!
//! # Layout (versions 1 to 3)
//!
//! Every message starts with a prefix that **no version will ever change**, so that an edge
//! can answer a device of any version ("unsupported version", addressed to the right device)
//! and a device can read the status of an answer from an edge of any version:
//!
//! ```text
//! magic "FRY" (3) | version u8 | kind u8 (1 request, 2 response) | flags u8 | request id u64
//! request:  … | device id len u8 | device id
//! response: … | status u8
//! ```
//!
//! The rest is version 1's (integers little-endian, `name` = u8 length + bytes):
//!
//! ```text
//! request  := prefix device_id:name sent_at_us:u64 deadline_ms:u32 (MAX = none) precision:u8
//!             model:name input
//! input    := 1 format:u8 len:u32 bytes            (encoded image)
//!           | 2 tensor                             (raw tensor)
//!           | 3 format:u8 len:u32 bytes            (version 2: image shaped to the model's input)
//!           | 4 channels:u8 (scale:f32 zero_point:i32)×channels tensor
//!                                                  (version 2: quantized tensor, i8 or u8)
//!           | 5 cut:(u8 len + UTF-8) channels:u8 (scale:f32 zero_point:i32)×channels tensor
//!                                                  (version 3: split inference, the tensor
//!                                                   named `cut` of the model's graph)
//! tensor   := dtype:u8 ndim:u8 dims:u32×ndim len:u32 bytes   (len == Π dims × dtype size)
//! response := prefix status:u8 queue_wait_us:u32 compute_us:u32 batch_size:u16
//!             queue_depth:u32 detail:(u8 len + UTF-8) top_k_count:u8
//!             (class:u32 score:f32 label:(u8 len + UTF-8))×count
//!             (0 | 1 tensor)                       (output tensor, optional)
//! ```
//!
//! Version 2 only adds the input kinds 3 and 4. A request is written in the oldest version
//! that carries its input (so an original image or an f32 tensor still reaches a version-1
//! edge), responses always in version 1 (their layout did not change), and both versions are
//! decoded: devices of either version keep working with an edge of either, except that a
//! version-1 edge refuses a shaped or quantized input with "unsupported version". Version 3
//! adds input kind 5 the same way: only a split request is written in it.
//!
//! Payloads travel as raw bytes at the end of the message: the framing around an image is
//! 35 bytes plus the two names, around a tensor 38 + 4 per dimension plus the names.
//!
//! # Properties
//!
//! - Decoding is total: any byte string gives a value or a typed [`DecodeError`] (wrapped
//!   with the sender's identity when it could be read), never a panic.
//! - Decoding allocates nothing: [`RequestRef`] and [`ResponseRef`] borrow from the input
//!   and keep names and shapes inline. Inputs longer than [`Limits::max_message_size`] are
//!   refused, so nothing downstream (e.g. [`RequestRef::to_request`]) copies more than that.
//! - Encoding writes into a caller's `Vec<u8>`, which can be reused for every message.
//!
//! # Files
//!
//! - `names`: [`DeviceId`], [`ModelName`] (inline, validated topic levels)
//! - `tensor`: [`DType`], [`Shape`], [`TensorRef`], [`Tensor`]
//! - `envelope`: request and response types
//! - `wire`: the numeric constants of the layout
//! - `encode`, `decode`: the codec; `error`: its errors
//! - [`topics`]: MQTT topic builders and parsers

#![deny(unsafe_code, missing_docs)]

mod decode;
mod encode;
mod envelope;
mod error;
mod names;
mod tensor;
pub mod topics;
pub mod wire;

#[cfg(test)]
mod tests;

pub use decode::{decode_request, decode_response, peek_response_header};
pub use encode::{
    encode_decode_failure, encode_error_response, encode_request, encode_response,
    encoded_request_len, encoded_response_len, MAX_TEXT_LEN,
};
pub use envelope::{
    wall_clock_us,
    EdgeTimings, ImageFormat, Input, InputRef, Precision, Quantized, QuantizedRef, Request, RequestIdentity, RequestRef,
    Response, ResponseHeader, ResponseRef, Status, TopK, TopKEntry, TopKIter, TopKList,
};
pub use error::{DecodeError, EncodeError, RequestDecodeError, ResponseDecodeError, TensorError};
pub use names::{DeviceId, ModelName, NameError, MAX_NAME_LEN};
pub use tensor::{DType, Shape, Tensor, TensorRef, MAX_DIMS};

/// The newest protocol version this build speaks.
pub const PROTOCOL_VERSION: u8 = 3;
/// The oldest one it still decodes.
pub const OLDEST_VERSION: u8 = 1;

/// The model name a device's probes ask for: reserved, never served. An edge answers a probe
/// at once with [`Status::Ok`], no result, and its queue timings, and counts it as a probe,
/// not as an error (an older edge answers [`Status::UnknownModel`], which serves a probe as
/// well).
pub const PROBE_MODEL: &str = "ferry-probe";

/// Default for [`Limits::max_message_size`]: 4 MiB, ample for a 224×224 f32 tensor (600 KB)
/// or a camera JPEG, small enough that a burst of bad messages cannot exhaust a board.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Which envelope a message holds (its kind byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A device's request.
    Request,
    /// An edge's response.
    Response,
}

impl MessageKind {
    /// Wire code.
    pub const fn code(self) -> u8 {
        match self {
            MessageKind::Request => 1,
            MessageKind::Response => 2,
        }
    }
}

impl core::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MessageKind::Request => "request",
            MessageKind::Response => "response",
        })
    }
}

/// Limits the decoder enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes; larger ones are refused with
    /// [`DecodeError::TooLarge`]. Set the transport's incoming packet limit (rumqttc's
    /// `max_incoming_packet_size`, Mosquitto's `max_packet_size`) to match, so an oversized
    /// message is never even buffered whole.
    pub max_message_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}
