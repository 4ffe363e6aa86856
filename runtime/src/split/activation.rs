//! The intermediate tensor on the wire: FP32 activations quantized to unsigned bytes with one
//! scale and zero point for the whole tensor, chosen per request from its own range (the
//! range moves from image to image; a fixed calibration would clip some of them).

use crate::error::RuntimeError;

/// A quantized activation: `x ≈ scale × (q − zero_point)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// Step.
    pub scale: f32,
    /// The byte that stands for 0.0.
    pub zero_point: i32,
    /// One byte per value.
    pub values: Vec<u8>,
}

/// Quantizes `x` over its range widened to hold 0.0 exactly (padding and ReLU zeros stay
/// zeros). A value that is not finite is refused: it would poison the whole range.
pub fn quantize(x: &[f32]) -> Result<Quantized, RuntimeError> {
    if let Some(bad) = x.iter().find(|v| !v.is_finite()) {
        return Err(RuntimeError::Split { message: format!("the activation holds {bad}: not quantized") });
    }
    let lo = x.iter().copied().fold(0.0f32, f32::min);
    let hi = x.iter().copied().fold(0.0f32, f32::max);
    let span = hi - lo;
    let scale = if span > 0.0 && span.is_finite() { span / 255.0 } else { 1.0 };
    let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as i32;
    let values = x.iter().map(|v| ((v / scale).round() + zero_point as f32).clamp(0.0, 255.0) as u8).collect();
    Ok(Quantized { scale, zero_point, values })
}

/// Back to FP32.
pub fn dequantize(scale: f32, zero_point: i32, values: &[u8]) -> Vec<f32> {
    values.iter().map(|&q| scale * (i32::from(q) - zero_point) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_at_most_half_a_step() {
        let x: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.37).sin() * 5.0 - 1.0).collect();
        let q = quantize(&x).unwrap();
        let back = dequantize(q.scale, q.zero_point, &q.values);
        let worst = x.iter().zip(&back).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= q.scale / 2.0 + 1e-6, "{worst} vs step {}", q.scale);
        // Zero is exact.
        assert_eq!(dequantize(q.scale, q.zero_point, &[q.zero_point as u8])[0], 0.0);
    }

    #[test]
    fn constant_and_non_finite_inputs() {
        let q = quantize(&[0.0; 8]).unwrap();
        assert!(q.scale > 0.0 && q.values.iter().all(|&v| v as i32 == q.zero_point));
        assert!(quantize(&[1.0, f32::NAN]).is_err());
        assert!(quantize(&[f32::INFINITY]).is_err());
    }
}
