//! The tract ops the pass adds where tract has no integer counterpart of its own. Each is a
//! plain `TypedOp` with a direct kernel in safe Rust, tested against its definition.
//!
//! - [`convert`]: into and out of the pass's i8 NHWC representation.
//! - [`depthwise`]: depthwise convolution with fused per-channel requantization.
//! - [`add`]: addition of two quantized tensors, straight to the output's quantization.
//! - [`im2col`]: patches for a general convolution, so that tract's integer matmul does it.

pub mod add;
pub mod convert;
pub mod depthwise;
pub mod im2col;
