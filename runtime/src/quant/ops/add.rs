//! Element-wise addition of two quantized activations of the same shape, straight to the
//! output's quantization: `y = round(a_mult × (a − a_zero) + b_mult × (b − b_zero)) + y_zero`.
//! It replaces DequantizeLinear ×2 → Add → QuantizeLinear (four passes over the tensor, two of
//! them f32) by one.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::quant::params::{i8_range, to_i8};


/// The quantized addition.
#[derive(Debug, Clone, PartialEq)]
pub struct QAdd {
    /// `a_scale / y_scale`.
    pub a_mult: f32,
    /// `a` zero point (i8 domain).
    pub a_zero: i32,
    /// `b_scale / y_scale`.
    pub b_mult: f32,
    /// `b` zero point (i8 domain).
    pub b_zero: i32,
    /// Output zero point (i8 domain).
    pub y_zero: i32,
}

impl Eq for QAdd {}

impl QAdd {
    fn run(&self, a: &[i8], b: &[i8], out: &mut [i8]) {
        // One constant term: a_mult × (−a_zero) + b_mult × (−b_zero) + y_zero, rounding last.
        let offset = -(self.a_mult * self.a_zero as f32) - self.b_mult * self.b_zero as f32;
        let (lo, hi) = i8_range(self.y_zero);
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            let v = (f32::from(x) * self.a_mult + f32::from(y) * self.b_mult + offset).max(lo).min(hi);
            *o = to_i8(v, self.y_zero);
        }
    }
}

impl Op for QAdd {
    fn name(&self) -> StaticName {
        "FerryQAdd".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("a × {} + b × {} → i8", self.a_mult, self.b_mult)])
    }

    op_as_typed_op!();
}

impl EvalOp for QAdd {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (a, b) = args_2!(inputs);
        ensure!(a.shape() == b.shape(), "quantized add of {:?} and {:?}", a.shape(), b.shape());
        let av = a.to_plain_array_view::<i8>()?;
        let bv = b.to_plain_array_view::<i8>()?;
        let mut out = vec![0i8; av.len()];
        self.run(av.as_slice().context("contiguous a")?, bv.as_slice().context("contiguous b")?, &mut out);
        Ok(tvec!(tract_ndarray::ArrayD::from_shape_vec(a.shape(), out)?.into_tensor().into_tvalue()))
    }
}

impl TypedOp for QAdd {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.iter().all(|f| f.datum_type == i8::datum_type()));
        ensure!(inputs[0].shape == inputs[1].shape, "quantized add of {:?} and {:?}", inputs[0], inputs[1]);
        Ok(tvec!(i8::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_add_matches_dequantize_add_quantize() {
        let (sa, za, sb, zb, sy, zy) = (0.1f32, -3, 0.25f32, 10, 0.3f32, -1);
        let op = QAdd { a_mult: sa / sy, a_zero: za, b_mult: sb / sy, b_zero: zb, y_zero: zy };
        let a: Vec<i8> = (0..=255u8).map(|v| v as i8).collect();
        let b: Vec<i8> = (0..=255u8).rev().map(|v| v.wrapping_mul(7) as i8).collect();
        let mut out = vec![0i8; a.len()];
        op.run(&a, &b, &mut out);
        for i in 0..a.len() {
            let real = sa * (f32::from(a[i]) - za as f32) + sb * (f32::from(b[i]) - zb as f32);
            let want = ((real / sy).round() + zy as f32).clamp(-128.0, 127.0);
            assert!((f32::from(out[i]) - want).abs() <= 1.0, "{i}: {} vs {want}", out[i]);
        }
    }
}
