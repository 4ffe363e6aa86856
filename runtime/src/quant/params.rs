//! Quantization parameters and the integer arithmetic derived from them: activation scale and
//! zero point, int8 weights recovered from their dequantized form, and the fixed-point
//! per-channel requantization that tract's integer matrix kernels can fuse.

/// Scale and zero point of a quantized activation, with the zero point in the **i8** domain:
/// the pass stores every quantized activation as i8 (a u8 value `v` becomes `v - 128`), since
/// tract's integer matrix kernels take i8 × i8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// real = scale × (q − zero_point).
    pub scale: f32,
    /// In the i8 domain, −128..=127.
    pub zero_point: i32,
}

impl QParams {
    /// Parameters of a u8 tensor, moved to the i8 domain.
    pub fn from_u8(scale: f32, zero_point: u8) -> Self {
        Self { scale, zero_point: i32::from(zero_point) - 128 }
    }

    /// Parameters of an i8 tensor.
    pub fn from_i8(scale: f32, zero_point: i8) -> Self {
        Self { scale, zero_point: i32::from(zero_point) }
    }

    /// Whether the parameters can describe a tensor at all (finite, positive scale).
    pub fn is_usable(&self) -> bool {
        self.scale.is_finite() && self.scale > 0.0 && (-128..=127).contains(&self.zero_point)
    }
}

/// Symmetric per-output-channel int8 weights: real weight = `scales[o]` × `values[o, ..]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelWeights {
    /// Row-major, one row of `per_channel` values per output channel.
    pub values: Vec<i8>,
    /// One scale per output channel.
    pub scales: Vec<f32>,
    /// Values per output channel.
    pub per_channel: usize,
}

impl ChannelWeights {
    /// Sum of each output channel's integer weights (for the input zero-point correction).
    pub fn row_sums(&self) -> Vec<i32> {
        self.values.chunks(self.per_channel.max(1)).map(|row| row.iter().map(|&v| i32::from(v)).sum()).collect()
    }
}

/// Recovers int8 weights from weights that a DequantizeLinear already turned into floats: for
/// each output channel, finds a scale `s` such that every weight is `s × q` with `q` an integer
/// in −127..=127. ONNX QDQ exports (onnxruntime's included) quantize weights symmetrically per
/// channel, so this is exact for them; a float weight that is not on such a grid gives `None`
/// and its convolution stays in floating point.
pub fn recover_int8_weights(weights: &[f32], out_channels: usize) -> Option<ChannelWeights> {
    if out_channels == 0 || weights.len() % out_channels != 0 || weights.iter().any(|w| !w.is_finite()) {
        return None;
    }
    let per_channel = weights.len() / out_channels;
    let mut values = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(out_channels);
    for row in weights.chunks(per_channel) {
        let amax = row.iter().fold(0f32, |m, w| m.max(w.abs()));
        if amax == 0.0 {
            values.extend(std::iter::repeat_n(0i8, row.len()));
            scales.push(1.0);
            continue;
        }
        // The largest magnitude is `s × k` for some integer k ≤ 127. Symmetric quantization
        // maps it to ±127, so that is tried first; otherwise (onnxruntime widens the scale of
        // a channel whose int32 bias would overflow) the coarsest grid that holds every weight,
        // which keeps the bias at the accumulator scale as small as the exporter's.
        let (scale, row_values) =
            std::iter::once(127u8).chain(1..127).find_map(|k| on_grid(row, amax / f32::from(k)))?;
        values.extend(row_values);
        scales.push(scale);
    }
    Some(ChannelWeights { values, scales, per_channel })
}

/// `Some((scale, integers))` when every weight is within a thousandth of a step of `scale × q`.
fn on_grid(row: &[f32], scale: f32) -> Option<(f32, Vec<i8>)> {
    let mut out = Vec::with_capacity(row.len());
    for &w in row {
        let x = w / scale;
        let q = x.round();
        if (x - q).abs() > 1e-3 || q.abs() > 127.0 {
            return None;
        }
        out.push(q as i8);
    }
    Some((scale, out))
}

/// Quantizes a float bias at the accumulator's scale (`input scale × weight scale`), which is
/// how QDQ exports store it (exact for them, within half an accumulator step otherwise). Kept
/// in i64: exporters may widen a weight scale until the bias just fits i32, and the pass never
/// adds such a bias to an i32 accumulator (see [`FixedPointRequant::bias_term`]).
pub fn quantize_bias(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> Option<Vec<i64>> {
    if bias.len() != weight_scales.len() {
        return None;
    }
    bias.iter()
        .zip(weight_scales)
        .map(|(&b, &ws)| {
            let q = (f64::from(b) / (f64::from(input_scale) * f64::from(ws))).round();
            (q.is_finite() && q.abs() < 2f64.powi(52)).then_some(q as i64)
        })
        .collect()
}

/// The per-channel multipliers `input scale × weight scale[c] / output scale`, in f64.
pub fn multipliers(input: QParams, weight_scales: &[f32], output: QParams) -> Vec<f64> {
    weight_scales.iter().map(|&ws| f64::from(input.scale) * f64::from(ws) / f64::from(output.scale)).collect()
}

/// Per-channel requantization in i32 arithmetic that tract's integer matrix kernels fuse:
/// `y = ((acc >> pre_shift) × mult[c] + bias_term[c]) >> shift` (both shifts rounding half to
/// even), then clamp to i8.
///
/// The bias and the output zero point join after the multiplication, at 2^shift times the output
/// scale: there they are small (the output range), whereas at the accumulator's scale a bias can
/// use all of i32 (exporters widen a dead channel's weight scale until it does).
///
/// `shift` bounds the headroom: a convolution sum up to 2^(31 − shift) output steps stays exact,
/// far beyond the 256 steps an 8-bit output keeps. `pre_shift` drops accumulator bits that are
/// worth less than 1/16 of an output step, so that channels with small multipliers keep more
/// bits of `mult`.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedPointRequant {
    /// Rounding right shift applied to the accumulator first.
    pub pre_shift: u32,
    /// Per-channel integer multiplier.
    pub mult: Vec<i32>,
    /// Rounding right shift applied last.
    pub shift: u32,
    /// The real multipliers the integers approximate.
    real: Vec<f64>,
}

/// Output headroom: values up to 2^(31 − 20) = 2048 steps away from the zero point requantize
/// without overflow (8 times an 8-bit range).
const SHIFT: u32 = 20;

impl FixedPointRequant {
    /// From per-channel real multipliers; `None` when a multiplier is not finite, negative, or
    /// too large for the headroom.
    pub fn new(multipliers: &[f64]) -> Option<Self> {
        if multipliers.iter().any(|m| !m.is_finite() || *m < 0.0) {
            return None;
        }
        let max = multipliers.iter().cloned().fold(0f64, f64::max);
        if max == 0.0 {
            return Some(Self { pre_shift: 0, mult: vec![0; multipliers.len()], shift: SHIFT, real: multipliers.to_vec() });
        }
        // Largest pre-shift whose lost bits stay under 1/16 of an output step for every channel.
        let pre_shift = (1.0 / (16.0 * max)).log2().floor().clamp(0.0, 16.0) as u32;
        let factor = 2f64.powi((SHIFT + pre_shift) as i32);
        let mult: Option<Vec<i32>> = multipliers
            .iter()
            .map(|m| {
                let v = (m * factor).round();
                (v < f64::from(i32::MAX)).then_some(v as i32)
            })
            .collect();
        Some(Self { pre_shift, mult: mult?, shift: SHIFT, real: multipliers.to_vec() })
    }

    /// `(bias × multiplier + zero point) × 2^shift` for `channel`, the term added after the
    /// multiplication; `None` if it does not fit i32 (an output far outside the 8-bit range).
    pub fn bias_term(&self, channel: usize, bias: f64, zero_point: i32) -> Option<i32> {
        let v = ((bias * self.real[channel] + f64::from(zero_point)) * 2f64.powi(self.shift as i32)).round();
        (v.abs() < f64::from(i32::MAX)).then_some(v as i32)
    }

    /// The scalar reference of what the fused kernel computes (used by tests).
    pub fn apply(&self, acc: i32, channel: usize, bias_term: i32) -> i64 {
        let a = round_shift(i64::from(acc), self.pre_shift);
        round_shift(a * i64::from(self.mult[channel]) + i64::from(bias_term), self.shift)
    }
}

/// Right shift rounding half to even.
fn round_shift(v: i64, shift: u32) -> i64 {
    if shift == 0 {
        return v;
    }
    let floor = v >> shift;
    let rem = v - (floor << shift);
    let half = 1i64 << (shift - 1);
    if rem > half || (rem == half && floor & 1 == 1) {
        floor + 1
    } else {
        floor
    }
}

/// 1.5 × 2^23: adding it to an f32 below 2^22 in magnitude rounds it (half to even, the default
/// rounding mode) and leaves the integer in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;
/// The bits of `MAGIC`.
const MAGIC_BITS: i32 = 0x4B40_0000;

/// Round half to even without a libm call (f32 has no `roundps` on baseline x86-64); exact for
/// |x| < 2^22.
#[inline(always)]
pub fn round_even(x: f32) -> f32 {
    (x + MAGIC) - MAGIC
}

/// `clamp(round(v) + zero, −128, 127)` as i8, for `v` already clamped to
/// `[−128 − zero, 127 − zero]`: rounds by adding 1.5 × 2^23 and reads the integer from the bits, so a
/// loop of these has no float-to-int conversion (whose saturation fix-ups stop vectorisation).
#[inline(always)]
pub fn to_i8(v: f32, zero: i32) -> i8 {
    ((v + MAGIC).to_bits() as i32 - MAGIC_BITS + zero) as i8
}

/// The range `v` must be clamped to before [`to_i8`] with this zero point.
#[inline(always)]
pub fn i8_range(zero: i32) -> (f32, f32) {
    (-128.0 - zero as f32, 127.0 - zero as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_on_a_per_channel_grid_are_recovered_exactly() {
        let scales = [0.02f32, 0.5, 1e-4];
        let q: Vec<i8> = vec![127, -3, 0, 5, -127, 64, 7, 2, -7];
        let w: Vec<f32> = q.iter().enumerate().map(|(i, &v)| f32::from(v) * scales[i / 3]).collect();
        let got = recover_int8_weights(&w, 3).expect("on grid");
        for (i, (&v, &s)) in got.values.iter().zip(got.scales.iter().flat_map(|s| [s, s, s])).enumerate() {
            assert!((f32::from(v) * s - w[i]).abs() <= 1e-6 * w[i].abs().max(1e-6), "{i}");
        }
        // The third channel's largest weight is 7 steps: found on its own grid.
        assert_eq!(&got.values[6..], &[7, 2, -7]);
    }

    #[test]
    fn float_weights_off_any_grid_are_refused() {
        let w = [0.123_456_7f32, -0.987_654_3, 0.5, 0.333_333_3, 0.1, 0.7071];
        assert_eq!(recover_int8_weights(&w, 1), None);
    }

    #[test]
    fn fixed_point_requant_matches_the_real_multiplier_within_half_a_step() {
        let m = [3.1e-3, 7.7e-5, 0.04, 1.2e-2, 1.1e-7];
        let r = FixedPointRequant::new(&m).unwrap();
        for (c, &mc) in m.iter().enumerate() {
            for acc in [-200_000i32, -12_345, -1, 0, 1, 999, 54_321, 300_000] {
                // A bias near i32::MAX at the accumulator scale (a widened dead channel) is fine.
                for (bias, zero) in [(0i64, 0), (-1_234_567, -7), (2_147_000_000, 3)] {
                    let exact = (f64::from(acc) + bias as f64) * mc + f64::from(zero);
                    if exact.abs() > 1000.0 || f64::from(acc) * mc > 1000.0 {
                        continue;
                    }
                    let term = r.bias_term(c, bias as f64, zero).unwrap();
                    let got = r.apply(acc, c, term) as f64;
                    assert!((got - exact).abs() <= 0.5 + 1.0 / 16.0 + 1e-3, "c{c} acc {acc} bias {bias}: {got} vs {exact}");
                }
            }
        }
    }

    #[test]
    fn round_shift_rounds_half_to_even() {
        assert_eq!(round_shift(5, 1), 2); // 2.5 -> 2
        assert_eq!(round_shift(7, 1), 4); // 3.5 -> 4
        assert_eq!(round_shift(-5, 1), -2); // -2.5 -> -2
        assert_eq!(round_shift(-7, 2), -2); // -1.75 -> -2
        assert_eq!(round_even(2.5), 2.0);
        assert_eq!(round_even(-3.5), -4.0);
        assert_eq!(round_even(1.4999), 1.0);
        let (lo, hi) = i8_range(-3);
        assert_eq!(to_i8(2.5f32.max(lo).min(hi), -3), -1); // 2.5 -> 2, + zero
        assert_eq!(to_i8(-3.5f32.max(lo).min(hi), -3), -7); // -3.5 -> -4
        assert_eq!(to_i8(1e9f32.max(lo).min(hi), -3), 127);
        assert_eq!(to_i8(f32::NAN.max(lo).min(hi), -3), -128);
    }
}
