//! The pass's boundary ops: into its representation of quantized activations and back out of
//! it. A rank-4 NCHW activation is held as i8 **rows × channels**, `[n·h·w, c]`: channels last,
//! and already the matrix a pointwise convolution multiplies, so that tract sees no reshape
//! between its matrix product and the requantization it fuses after it. Quantizing a float input and dequantizing before a float op are
//! the two that run in a rewritten EfficientNet; the integer-to-integer ones keep the model's
//! interface when a graph input or output is itself quantized.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::quant::params::{i8_range, to_i8};


/// What a quantized-activation value is converted from, or to, at the pass's boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outside {
    /// f32: quantize (into) or dequantize (out of) with scale and zero point (i8 domain).
    Float {
        /// real = scale × (q − zero_point).
        scale: f32,
        /// i8 domain.
        zero_point: i32,
    },
    /// u8 holding `i8 + 128`.
    U8,
    /// i8 as is.
    I8,
}

impl Outside {
    fn datum_type(&self) -> DatumType {
        match self {
            Outside::Float { .. } => f32::datum_type(),
            Outside::U8 => u8::datum_type(),
            Outside::I8 => i8::datum_type(),
        }
    }
}

/// Converts `from` to the i8 domain, moving a rank-4 NCHW input to rows × channels when
/// `channels_last` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct IntoQuantized {
    /// The outside representation.
    pub from: Outside,
    /// Whether the input is rank-4 NCHW to be stored `[n·h·w, c]`.
    pub channels_last: bool,
}

/// Converts i8 back to `to`; with `nchw` set, from rows × channels to that NCHW shape.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfQuantized {
    /// The outside representation.
    pub to: Outside,
    /// The NCHW shape to restore from `[n·h·w, c]`, if the value is held channels last.
    pub nchw: Option<[usize; 4]>,
}

impl Eq for IntoQuantized {}
impl Eq for OutOfQuantized {}

/// `[n·h·w, c]`, the rows × channels shape of an NCHW shape.
pub fn rows_shape(nchw: &[TDim]) -> TVec<TDim> {
    tvec![nchw[0].clone() * &nchw[2] * &nchw[3], nchw[1].clone()]
}

/// Copies `src` into `dst`, moving the channel axis of an NCHW shape `nchw`: NCHW → rows ×
/// channels when `to_last`, back otherwise, converting each element with `f`.
fn permute<T: Copy, U>(src: &[T], nchw: [usize; 4], to_last: bool, dst: &mut [U], f: impl Fn(T) -> U) {
    let [n, c, h, w] = nchw;
    let hw = h * w;
    if c == 0 || hw == 0 {
        return;
    }
    for b in 0..n {
        let s = &src[b * c * hw..][..c * hw];
        let d = &mut dst[b * c * hw..][..c * hw];
        if to_last {
            for ch in 0..c {
                for (p, &v) in s[ch * hw..][..hw].iter().enumerate() {
                    d[p * c + ch] = f(v);
                }
            }
        } else {
            for (p, px) in s.chunks_exact(c).enumerate() {
                for (ch, &v) in px.iter().enumerate() {
                    d[ch * hw + p] = f(v);
                }
            }
        }
    }
}

/// Converts every element of `input` with `f`; `layout` is `Some((nchw, to_last))` when the
/// channel axis moves.
fn map_all<T: Datum + Copy, U: Datum + Copy + Default>(
    input: &Tensor,
    layout: Option<([usize; 4], bool)>,
    f: impl Fn(T) -> U,
) -> TractResult<Tensor> {
    let src = input.to_plain_array_view::<T>()?;
    let src = src.as_slice().context("contiguous input")?;
    let mut out = vec![U::default(); src.len()];
    let out_shape: TVec<usize> = match layout {
        None => {
            out.iter_mut().zip(src).for_each(|(o, &v)| *o = f(v));
            input.shape().into()
        }
        Some((nchw, to_last)) => {
            ensure!(nchw.iter().product::<usize>() == src.len(), "{nchw:?} against {:?}", input.shape());
            permute(src, nchw, to_last, &mut out, f);
            if to_last {
                tvec![nchw[0] * nchw[2] * nchw[3], nchw[1]]
            } else {
                nchw.into()
            }
        }
    };
    Ok(tract_ndarray::ArrayD::from_shape_vec(&*out_shape, out)?.into_tensor())
}

fn nchw_of(shape: &[usize]) -> TractResult<[usize; 4]> {
    match shape {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => bail!("channels-last conversion of a rank-{} tensor", shape.len()),
    }
}

/// Quantizes a whole slice, vectorisable (see [`to_i8`]).
fn quantize_all(src: &[f32], inv_scale: f32, zero_point: i32) -> Vec<i8> {
    let (lo, hi) = i8_range(zero_point);
    // NaN fails both comparisons and ends up at `lo`.
    src.iter().map(|&x| to_i8((x * inv_scale).max(lo).min(hi), zero_point)).collect()
}

impl Op for IntoQuantized {
    fn name(&self) -> StaticName {
        "FerryIntoQuantized".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("from {:?}, channels last: {}", self.from, self.channels_last)])
    }

    op_as_typed_op!();
}

impl EvalOp for IntoQuantized {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let layout = if self.channels_last { Some((nchw_of(input.shape())?, true)) } else { None };
        let out = match self.from {
            Outside::Float { scale, zero_point } => {
                // Quantize in the input's order (a vectorised pass), then move the bytes.
                let view = input.to_plain_array_view::<f32>()?;
                let q = quantize_all(view.as_slice().context("contiguous input")?, scale.recip(), zero_point);
                let q = tract_ndarray::ArrayD::from_shape_vec(input.shape(), q)?.into_tensor();
                map_all::<i8, i8>(&q, layout, |x| x)?
            }
            Outside::U8 => map_all::<u8, i8>(&input, layout, |x| (i16::from(x) - 128) as i8)?,
            Outside::I8 => map_all::<i8, i8>(&input, layout, |x| x)?,
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for IntoQuantized {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == self.from.datum_type(), "expected {:?}, got {:?}", self.from, inputs[0]);
        let shape = inputs[0].shape.to_tvec();
        let shape = if self.channels_last {
            ensure!(shape.len() == 4, "channels-last conversion of {:?}", inputs[0]);
            rows_shape(&shape)
        } else {
            shape
        };
        Ok(tvec!(i8::fact(shape)))
    }

    as_op!();
}

impl Op for OutOfQuantized {
    fn name(&self) -> StaticName {
        "FerryOutOfQuantized".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("to {:?}, NCHW {:?}", self.to, self.nchw)])
    }

    op_as_typed_op!();
}

impl EvalOp for OutOfQuantized {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let layout = self.nchw.map(|s| (s, false));
        let out = match self.to {
            Outside::Float { scale, zero_point } => {
                map_all::<i8, f32>(&input, layout, |q| (i32::from(q) - zero_point) as f32 * scale)?
            }
            Outside::U8 => map_all::<i8, u8>(&input, layout, |q| (i16::from(q) + 128) as u8)?,
            Outside::I8 => map_all::<i8, i8>(&input, layout, |q| q)?,
        };
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for OutOfQuantized {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == i8::datum_type(), "expected i8, got {:?}", inputs[0]);
        let shape = match self.nchw {
            Some(nchw) => {
                let rows: TVec<TDim> = rows_shape(&nchw.iter().map(|d| d.to_dim()).collect::<TVec<_>>());
                ensure!(inputs[0].shape.to_tvec() == rows, "{:?} is not the rows of {nchw:?}", inputs[0]);
                nchw.iter().map(|d| d.to_dim()).collect()
            }
            None => inputs[0].shape.to_tvec(),
        };
        Ok(tvec!(self.to.datum_type().fact(shape)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizing_to_channels_last_then_back_is_the_identity_on_the_grid() -> TractResult<()> {
        let (scale, zp) = (0.05f32, -3);
        let data: Vec<f32> = (0..2 * 3 * 4 * 5).map(|i| ((i % 37) as f32 - 18.0) * scale).collect();
        let x = Tensor::from_shape(&[2, 3, 4, 5], &data)?;
        let into = IntoQuantized { from: Outside::Float { scale, zero_point: zp }, channels_last: true };
        let q = into.eval(&EvalContext::out_of_plan(), tvec!(x.clone().into_tvalue()))?.remove(0);
        assert_eq!(q.shape(), &[2 * 4 * 5, 3]);
        // element (n=1, c=2, h=3, w=4) sits at row (1 × 4 + 3) × 5 + 4, column 2
        let qv = q.to_plain_array_view::<i8>()?;
        let xv = x.to_plain_array_view::<f32>()?;
        assert_eq!(f32::from(qv[[(4 + 3) * 5 + 4, 2]]) - zp as f32, (xv[[1, 2, 3, 4]] / scale).round());
        let out = OutOfQuantized { to: Outside::Float { scale, zero_point: zp }, nchw: Some([2, 3, 4, 5]) };
        let back = out.eval(&EvalContext::out_of_plan(), tvec!(q))?.remove(0);
        back.close_enough(&x, Approximation::Close)?;
        Ok(())
    }

    #[test]
    fn u8_round_trips_through_the_i8_domain() -> TractResult<()> {
        let x = Tensor::from_shape(&[1, 2, 1, 2], &[0u8, 127, 128, 255])?;
        let q = IntoQuantized { from: Outside::U8, channels_last: true }
            .eval(&EvalContext::out_of_plan(), tvec!(x.clone().into_tvalue()))?
            .remove(0);
        assert_eq!(q.to_plain_array_view::<i8>()?.iter().copied().collect::<Vec<_>>(), vec![-128, 0, -1, 127]);
        let back = OutOfQuantized { to: Outside::U8, nchw: Some([1, 2, 1, 2]) }
            .eval(&EvalContext::out_of_plan(), tvec!(q))?
            .remove(0);
        assert_eq!(*back, x);
        Ok(())
    }
}
