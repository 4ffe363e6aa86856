//! Patches of an i8 NHWC input for a general (not pointwise, not depthwise) convolution, so
//! that tract's integer matrix product does the arithmetic: `[n, oh, ow, kh × kw × c]`, taps in
//! (ky, kx, c) order, outside the input filled with the input's zero point (a real 0.0).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::depthwise::{batch_of, output_rows, Window};

/// The patch extraction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QIm2Col {
    /// The window.
    pub window: Window,
    /// Input channels.
    pub channels: usize,
    /// Input zero point (i8 domain): the padding value.
    pub x_zero: i8,
}

impl QIm2Col {
    fn patch_len(&self) -> usize {
        self.window.kernel[0] * self.window.kernel[1] * self.channels
    }

    fn run(&self, x: &[i8], batch: usize) -> Vec<i8> {
        let c = self.channels;
        let [ih, iw] = self.window.input;
        let [kh, kw] = self.window.kernel;
        let [oh, ow] = self.window.output;
        let k = self.patch_len();
        let mut out = vec![self.x_zero; batch * oh * ow * k];
        for b in 0..batch {
            let xb = &x[b * ih * iw * c..][..ih * iw * c];
            let ob = &mut out[b * oh * ow * k..][..oh * ow * k];
            for oy in 0..oh {
                for ox in 0..ow {
                    let patch = &mut ob[(oy * ow + ox) * k..][..k];
                    for ky in 0..kh {
                        let Some(iy) = self.window.source(0, oy, ky) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = self.window.source(1, ox, kx) else { continue };
                            patch[(ky * kw + kx) * c..][..c].copy_from_slice(&xb[(iy * iw + ix) * c..][..c]);
                        }
                    }
                }
            }
        }
        out
    }
}

impl Op for QIm2Col {
    fn name(&self) -> StaticName {
        "FerryQIm2Col".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let w = &self.window;
        Ok(vec![format!("i8 patches: input {:?} kernel {:?} strides {:?} pad {:?} -> {:?}", w.input, w.kernel, w.strides, w.pad_before, w.output)])
    }

    op_as_typed_op!();
}

impl EvalOp for QIm2Col {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let batch = batch_of(input.shape(), &self.window, self.channels)?;
        let view = input.to_plain_array_view::<i8>()?;
        let out = self.run(view.as_slice().context("contiguous input")?, batch);
        let [oh, ow] = self.window.output;
        let t = tract_ndarray::Array2::from_shape_vec((batch * oh * ow, self.patch_len()), out)?.into_tensor();
        Ok(tvec!(t.into_tvalue()))
    }
}

impl TypedOp for QIm2Col {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == i8::datum_type() && inputs[0].rank() == 2);
        Ok(tvec!(i8::fact([output_rows(&inputs[0].shape[0], &self.window)?, self.patch_len().to_dim()])))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_take_taps_in_ky_kx_c_order_and_pad_with_the_zero_point() {
        // 1×3×3×2 input, 3×3 kernel, stride 2, pad 1: output 2×2.
        let window = Window { input: [3, 3], kernel: [3, 3], strides: [2, 2], pad_before: [1, 1], output: [2, 2] };
        let op = QIm2Col { window, channels: 2, x_zero: -9 };
        let x: Vec<i8> = (0..18).collect();
        let out = op.run(&x, 1);
        let first = &out[..18];
        // Output (0, 0) looks at rows -1..=1, cols -1..=1: the top row and left column are padding.
        assert_eq!(&first[..6], &[-9; 6]);
        assert_eq!(&first[6..8], &[-9, -9]);
        assert_eq!(&first[8..12], &[0, 1, 2, 3]); // (0,0) and (0,1)
        assert_eq!(&first[12..14], &[-9, -9]);
        assert_eq!(&first[14..18], &[6, 7, 8, 9]); // (1,0) and (1,1)
    }
}
