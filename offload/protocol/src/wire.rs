//! Wire constants of protocol versions 1 to 3. The layout itself is documented in the module doc
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

/// Input tag (version 2): an encoded image already shaped to the model's input (resized and
/// centre-cropped by the device with the model's preprocessing): format, length, bytes.
pub const INPUT_SHAPED_IMAGE: u8 = 3;
/// Input tag (version 2): a quantized tensor: channel count u8, then per channel scale f32 and
/// zero point i32, then a tensor (dtype i8 or u8).
pub const INPUT_QUANTIZED: u8 = 4;
/// Input tag (version 3): a split inference's crossing tensor: the tensor's name in the model
/// graph (u8 length + UTF-8), then a quantized tensor as for [`INPUT_QUANTIZED`].
pub const INPUT_SPLIT: u8 = 5;
/// Most channels a quantized tensor's parameters may list.
pub const MAX_QUANT_CHANNELS: usize = 16;
/// Bytes per channel of quantization parameters (scale f32 + zero point i32).
pub const QUANT_PARAM_LEN: usize = 8;

/// The version responses are written in: their layout is the same in versions 1 to 3, so a
/// version-1 device reads a newer edge's answers.
pub const RESPONSE_VERSION: u8 = 1;

/// Output tag: no output tensor.
pub const OUTPUT_NONE: u8 = 0;
/// Output tag: tensor follows.
pub const OUTPUT_TENSOR: u8 = 1;
