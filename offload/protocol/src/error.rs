//! Typed errors of the protocol layer. None of them allocates, so producing one on the
//! decode path keeps decoding allocation-free.

use super::envelope::{RequestIdentity, ResponseHeader, Status};
use super::names::NameError;
use super::MessageKind;

/// A tensor whose data does not fit its shape and dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    /// More than [`MAX_DIMS`](super::MAX_DIMS) dimensions.
    #[error("tensor has {ndim} dimensions, at most 8 are allowed")]
    TooManyDims {
        /// Dimensions found.
        ndim: usize,
    },
    /// Shape × dtype size overflows `usize`.
    #[error("tensor shape times dtype size overflows")]
    Overflow,
    /// Data length differs from shape × dtype size.
    #[error("tensor data is {actual} bytes, its shape and dtype need {expected}")]
    LengthMismatch {
        /// Bytes the shape and dtype need.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
}

/// Why a byte string is not a valid message. Every byte string decodes to a value or to one
/// of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is larger than the configured maximum.
    #[error("message is {size} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Size of the message.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The message does not start with the Ferry magic.
    #[error("not a Ferry message (bad magic)")]
    BadMagic,
    /// The message's protocol version is not spoken here.
    #[error(
        "protocol version {found} is not supported (this side speaks {} to {})",
        super::OLDEST_VERSION,
        super::PROTOCOL_VERSION
    )]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// A response where a request was expected, or the other way round, or an unknown kind.
    #[error("expected a {expected} message, found kind byte {found}")]
    WrongKind {
        /// The kind the caller decoded for.
        expected: MessageKind,
        /// The kind byte found.
        found: u8,
    },
    /// Flag bits that this version does not define are set.
    #[error("reserved flag bits {0:#04x} are set")]
    ReservedFlags(u8),
    /// The message ends inside a field (or a declared length runs past its end).
    #[error("message ends inside the {field} field")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A device id or model name breaks the naming rule.
    #[error("invalid {field}: {error}")]
    InvalidName {
        /// Which name.
        field: &'static str,
        /// What is wrong with it.
        error: NameError,
    },
    /// A text field is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field.
        field: &'static str,
    },
    /// An enumerated field holds a code this version does not define.
    #[error("unknown {field} code {code}")]
    UnknownCode {
        /// Which field.
        field: &'static str,
        /// The code found.
        code: u8,
    },
    /// A tensor's shape, dtype and data disagree.
    #[error("bad tensor: {0}")]
    Tensor(#[from] TensorError),
    /// Bytes remain after the last field.
    #[error("{0} bytes follow the end of the message")]
    TrailingBytes(usize),
    /// A quantized input's parameters are unusable.
    #[error("bad quantized input: {0}")]
    BadQuantization(&'static str),
}

impl DecodeError {
    /// The status an error response to such a request carries.
    pub fn status(&self) -> Status {
        match self {
            DecodeError::TooLarge { .. } => Status::TooLarge,
            DecodeError::UnsupportedVersion { .. } => Status::UnsupportedVersion,
            _ => Status::Malformed,
        }
    }
}

/// A request that failed to decode, with whatever identified its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct RequestDecodeError {
    /// Request id and device, when the version-independent prefix was intact: answer with
    /// [`encode_error_response`](super::encode_error_response) on the device's response
    /// topic. `None`: log and count it, nobody can be told.
    pub identity: Option<RequestIdentity>,
    /// What was wrong.
    pub error: DecodeError,
}

/// A response that failed to decode, with its version-independent header when readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ResponseDecodeError {
    /// Request id and status, when the prefix was intact: a response from an edge of another
    /// version still tells its status (e.g. [`Status::UnsupportedVersion`]).
    pub header: Option<ResponseHeader>,
    /// What was wrong.
    pub error: DecodeError,
}

/// Why an envelope cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A payload or tensor longer than the 4 GiB a length field can state.
    #[error("payload of {len} bytes does not fit a u32 length")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
    },
    /// More than 255 top-k entries.
    #[error("{count} top-k entries, at most 255 fit")]
    TooManyTopK {
        /// Entries given.
        count: usize,
    },
    /// A top-k label or detail longer than 255 bytes.
    #[error("{field} is {len} bytes, at most 255 fit")]
    TextTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}
