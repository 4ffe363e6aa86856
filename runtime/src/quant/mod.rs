//! Integer execution of QDQ-quantized models in tract.
//!
//! A QDQ ONNX export (onnxruntime's `quantize_static`, say) marks each quantized op by
//! surrounding it with DequantizeLinear on its inputs and QuantizeLinear on its output. tract
//! 0.23 keeps those as element-wise ops and runs every convolution in f32 between them, which
//! makes such a model slower than its float original. This pass rewrites the typed model, before
//! tract's own decluttering and optimization, so that:
//!
//! - activations between quantized ops stay **i8, rows × channels** (`[n·h·w, c]` for an NCHW
//!   tensor: channels last, and already the matrix a pointwise conv multiplies, so tract sees no
//!   reshape between its product and the epilogue it fuses); u8 values are offset by −128 on the
//!   way in: same arithmetic, the type tract's integer kernels take;
//! - a **pointwise** convolution (1×1, stride 1) becomes an i8 × i8 → i32 `EinSum` followed by
//!   a per-channel fixed-point requantization (`add bias`, `mul`, rounding shifts, clamp, cast)
//!   that tract fuses into its matrix kernel's epilogue — one kernel call, VNNI/NEON dot products;
//! - any other single-group convolution (a stem 3×3) takes i8 patches ([`ops::im2col`]) then the
//!   same matrix product;
//! - a **depthwise** convolution runs in a direct integer kernel with the requantization in the
//!   same loop ([`ops::depthwise`]), instead of Im2col and a one-row-per-channel matrix product
//!   (portable Rust, vectorised by the compiler; on x86-64 a second build of the same loops for
//!   AVX2 is picked at run time);
//! - an **addition** of two quantized tensors goes straight to the output's quantization
//!   ([`ops::add`]);
//! - weights stay int8 in the plan (tract packs them as i8), so the model's memory shrinks too.
//!
//! Everything else is copied unchanged; float ops read quantized values through a dequantize
//! inserted where they need one. Weights are recovered as int8 from their dequantized form (they
//! must lie on a per-output-channel grid, which QDQ weights do); a conv whose weights do not, or
//! that the pass does not handle (grouped, dilated, ...), stays in floating point and is listed
//! in the [`Report`].
//!
//! The arithmetic follows the QDQ graph's: `round(real / scale) + zero point`, saturated, with
//! rounding half to even; results differ from tract's float evaluation of the QDQ graph by at
//! most one quantization step where rounding ties fall differently (tested per node on the
//! shipped model).
//!
//! The module depends on tract only through public APIs and holds no Ferry types, so that it could
//! be offered to tract as a declutter pass.

pub mod ops;
pub mod params;
pub mod pattern;
pub mod rewrite;

use tract_onnx::prelude::*;

pub use rewrite::Report;

/// What can go wrong in the pass. A model the pass cannot improve is not an error: it comes back
/// unchanged, with the reasons in the [`Report`].
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// tract refused a node the pass built or copied.
    #[error("tract: {0}")]
    Tract(String),
    /// The pass reached a state its matching should have excluded.
    #[error("integer rewrite: {0}")]
    Internal(String),
}

impl From<TractError> for QuantError {
    fn from(e: TractError) -> Self {
        QuantError::Tract(format!("{e:#}"))
    }
}

/// Rewrites the quantized units of a typed model (as `into_typed()` gives it, not decluttered)
/// to run on integers; see the module documentation.
pub fn integerize(model: &TypedModel) -> Result<(TypedModel, Report), QuantError> {
    rewrite::Rewriter::new(model)?.run()
}
