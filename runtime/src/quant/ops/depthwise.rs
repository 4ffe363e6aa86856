//! Depthwise convolution on i8 activations, channels last, with the per-channel requantization
//! done in the same pass: a direct kernel, where tract would go through Im2col and a matrix
//! product with one row per channel.
//!
//! The inner loop runs along the channels, which are contiguous in NHWC; centred inputs
//! (`x − zero point`, at most 255 in magnitude) times i8 weights fit i16 products, which the
//! compiler vectorises on every target (SSE2, NEON) without target-specific code.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use crate::quant::params::{i8_range, to_i8};


/// Geometry of a 2-D convolution window over an NHWC input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Window {
    /// Input height and width.
    pub input: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides along height and width.
    pub strides: [usize; 2],
    /// Zero padding before (top, left); what comes after follows from `output`.
    pub pad_before: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

/// The batch size of a rows × channels input `[n·h·w, c]` to `window`.
pub fn batch_of(shape: &[usize], window: &Window, channels: usize) -> TractResult<usize> {
    let [h, w] = window.input;
    ensure!(shape.len() == 2 && shape[1] == channels && h * w > 0 && shape[0] % (h * w) == 0, "input {shape:?} for {window:?}");
    Ok(shape[0] / (h * w))
}

/// Output rows `n·oh·ow` for input rows `n·ih·iw`.
pub fn output_rows(input_rows: &TDim, window: &Window) -> TractResult<TDim> {
    let [ih, iw] = window.input;
    let [oh, ow] = window.output;
    let n = input_rows.to_usize().context("symbolic batch")? / (ih * iw).max(1);
    Ok((n * oh * ow).to_dim())
}

impl Window {
    /// Input row/column read by output `o` and kernel tap `k` along `axis`, if inside the input.
    #[inline(always)]
    pub fn source(&self, axis: usize, o: usize, k: usize) -> Option<usize> {
        (o * self.strides[axis] + k).checked_sub(self.pad_before[axis]).filter(|&i| i < self.input[axis])
    }
}

/// Per output pixel and channel `c`, saturated to i8:
///
/// ```text
/// y[n, oy, ox, c] = round(mult[c] × Σ_taps (x[n, iy, ix, c] − x_zero) × w[tap, c] + bias[c]) + y_zero
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct QDepthwiseConv {
    /// The window.
    pub window: Window,
    /// Channels.
    pub channels: usize,
    /// Weights, tap-major: `[kh × kw][channels]`, widened to i16 once at load; each within
    /// −127..=127 (int8 weights), so that a product with a centred input fits i16.
    pub weights: Vec<i16>,
    /// Bias in output steps (`bias at the accumulator's scale × mult`): added after the
    /// multiplication, so that a bias using all of i32 at the accumulator's scale is no
    /// overflow risk.
    pub bias: Vec<f32>,
    /// Per-channel `x_scale × w_scale[c] / y_scale`.
    pub multipliers: Vec<f32>,
    /// Input zero point (i8 domain).
    pub x_zero: i32,
    /// Output zero point (i8 domain).
    pub y_zero: i32,
}

impl Eq for QDepthwiseConv {}

impl QDepthwiseConv {
    fn run(&self, x: &[i8], batch: usize) -> Vec<i8> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `run_avx2` only needs AVX2, which the CPU was just found to have.
            #[allow(unsafe_code)]
            return unsafe { self.run_avx2(x, batch) };
        }
        self.run_portable(x, batch)
    }

    /// The same loops compiled for AVX2: baseline x86-64 (SSE2) multiplies four i16 lanes at a
    /// time and widens them with shuffles; AVX2 does sixteen. On aarch64 NEON is baseline and
    /// the portable build is already vectorised.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, x: &[i8], batch: usize) -> Vec<i8> {
        self.run_portable(x, batch)
    }

    #[inline(always)]
    fn run_portable(&self, x: &[i8], batch: usize) -> Vec<i8> {
        let c = self.channels;
        let [ih, iw] = self.window.input;
        let [kh, kw] = self.window.kernel;
        let [oh, ow] = self.window.output;
        let mut out = vec![0i8; batch * oh * ow * c];
        let mut centred = vec![0i16; ih * iw * c];
        let mut acc = vec![0i32; c];
        let xz = self.x_zero as i16;
        for b in 0..batch {
            let xb = &x[b * ih * iw * c..][..ih * iw * c];
            centred.iter_mut().zip(xb).for_each(|(d, &v)| *d = i16::from(v) - xz);
            let ob = &mut out[b * oh * ow * c..][..oh * ow * c];
            for oy in 0..oh {
                for ox in 0..ow {
                    acc.fill(0);
                    for ky in 0..kh {
                        let Some(iy) = self.window.source(0, oy, ky) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = self.window.source(1, ox, kx) else { continue };
                            let xs = &centred[(iy * iw + ix) * c..][..c];
                            let ws = &self.weights[(ky * kw + kx) * c..][..c];
                            // Products fit i16: |x − zero| ≤ 255, |w| ≤ 127.
                            for ((a, &xv), &wv) in acc.iter_mut().zip(xs).zip(ws) {
                                *a += i32::from(xv * wv);
                            }
                        }
                    }
                    let dst = &mut ob[(oy * ow + ox) * c..][..c];
                    requantize(&acc, &self.multipliers, &self.bias, self.y_zero, dst);
                }
            }
        }
        out
    }
}

/// `dst[c] = clamp(round(acc[c] × mult[c] + bias[c]) + zero, −128, 127)`, vectorisable (see
/// [`to_i8`]).
#[inline(always)]
pub fn requantize(acc: &[i32], mult: &[f32], bias: &[f32], zero: i32, dst: &mut [i8]) {
    let (lo, hi) = i8_range(zero);
    for (((d, &a), &m), &b) in dst.iter_mut().zip(acc).zip(mult).zip(bias) {
        *d = to_i8((a as f32 * m + b).max(lo).min(hi), zero);
    }
}

impl Op for QDepthwiseConv {
    fn name(&self) -> StaticName {
        "FerryQDepthwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let w = &self.window;
        Ok(vec![format!(
            "direct i8 kernel, channels last: input {:?} kernel {:?} strides {:?} pad {:?} -> {:?}, {} channels",
            w.input, w.kernel, w.strides, w.pad_before, w.output, self.channels
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for QDepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let batch = batch_of(input.shape(), &self.window, self.channels)?;
        let view = input.to_plain_array_view::<i8>()?;
        let x = view.as_slice().context("contiguous input")?;
        let out = self.run(x, batch);
        let [oh, ow] = self.window.output;
        let t = tract_ndarray::Array2::from_shape_vec((batch * oh * ow, self.channels), out)?.into_tensor();
        Ok(tvec!(t.into_tvalue()))
    }
}

impl TypedOp for QDepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == i8::datum_type() && inputs[0].rank() == 2);
        Ok(tvec!(i8::fact([output_rows(&inputs[0].shape[0], &self.window)?, self.channels.to_dim()])))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let [kh, kw] = self.window.kernel;
        let rows = output_rows(&inputs[0].shape[0], &self.window)?;
        Ok(tvec!((Cost::FMA(i32::datum_type()), rows * (kh * kw * self.channels))))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scalar reference straight from the definition, in f64.
    fn reference(op: &QDepthwiseConv, x: &[i8]) -> Vec<i8> {
        let w = &op.window;
        let c = op.channels;
        let mut out = vec![];
        for oy in 0..w.output[0] {
            for ox in 0..w.output[1] {
                for ch in 0..c {
                    let mut acc = 0i64;
                    for ky in 0..w.kernel[0] {
                        for kx in 0..w.kernel[1] {
                            let iy = (oy * w.strides[0] + ky) as isize - w.pad_before[0] as isize;
                            let ix = (ox * w.strides[1] + kx) as isize - w.pad_before[1] as isize;
                            if iy < 0 || ix < 0 || iy >= w.input[0] as isize || ix >= w.input[1] as isize {
                                continue;
                            }
                            let xv = i64::from(x[(iy as usize * w.input[1] + ix as usize) * c + ch]) - i64::from(op.x_zero);
                            acc += xv * i64::from(op.weights[(ky * w.kernel[1] + kx) * c + ch]);
                        }
                    }
                    let y = (acc as f64 * f64::from(op.multipliers[ch]) + f64::from(op.bias[ch])).round() + f64::from(op.y_zero);
                    out.push(y.clamp(-128.0, 127.0) as i8);
                }
            }
        }
        out
    }

    #[test]
    fn strided_padded_depthwise_matches_the_definition_within_one_step() {
        let c = 19;
        let window = Window { input: [9, 7], kernel: [5, 3], strides: [2, 1], pad_before: [1, 1], output: [4, 7] };
        let op = QDepthwiseConv {
            window,
            channels: c,
            weights: (0..15 * c).map(|i| ((i * 37) % 255) as i16 - 127).collect(),
            bias: (0..c).map(|i| i as f32 * 3.3 - 30.0).collect(),
            multipliers: (0..c).map(|i| 1e-3 + i as f32 * 2e-4).collect(),
            x_zero: -7,
            y_zero: 5,
        };
        let x: Vec<i8> = (0..9 * 7 * c).map(|i| ((i * 91) % 256) as u8 as i8).collect();
        let got = op.run(&x, 1);
        let want = reference(&op, &x);
        assert_eq!(got.len(), want.len());
        // f32 requantization may differ from f64 at exact ties only.
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((i16::from(*g) - i16::from(*w)).abs() <= 1, "{i}: {g} vs {w}");
        }
        assert!(got.iter().zip(&want).filter(|(g, w)| g != w).count() <= got.len() / 100);
    }
}
