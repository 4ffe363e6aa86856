//! Wire constants of protocol version 1. The layout itself is documented in the module doc
//! of [`protocol`](super); this file holds the numbers both codec halves share.

/// First three bytes of every Ferry message.
pub const MAGIC: [u8; 3] = *b"FRY";

/// Length of the part every message shares, in every version:
/// magic (3), version (1), kind (1), flags (1), request id (8).
pub const PREFIX_LEN: usize = 3 + 1 + 1 + 1 + 8;

/// Length of the edge timings block: queue wait (4), compute (4), batch size (2),
/// queue depth (4).
pub const TIMINGS_LEN: usize = 4 + 4 + 2 + 4;

/// Deadline field value meaning "no deadline".
pub const NO_DEADLINE: u32 = u32::MAX;

/// Input tag: encoded image follows (format, length, bytes).
pub const INPUT_IMAGE: u8 = 1;
/// Input tag: tensor follows (dtype, ndim, dims, length, bytes).
pub const INPUT_TENSOR: u8 = 2;

/// Output tag: no output tensor.
pub const OUTPUT_NONE: u8 = 0;
/// Output tag: tensor follows.
pub const OUTPUT_TENSOR: u8 = 1;
