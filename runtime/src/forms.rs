//! What a device can send for a whole-model offload instead of the application's original
//! file, all made from the manifest's own preprocessing (one copy of it, in
//! [`crate::preprocess`]):
//!
//! - [`Form::Original`]: the bytes as the application gave them; the edge does everything.
//! - [`Form::Jpeg`]: the image resized and centre-cropped on the device to the model's input
//!   ([`preprocess::shape_image`]) and re-encoded as JPEG at a quality; the edge decodes and
//!   only normalises ([`preprocess::shaped_image_to_tensor`]). Lossy: its accuracy price is
//!   measured (`ferry eval`).
//! - [`Form::Int8`]: the preprocessed tensor as signed bytes with a per-channel scale and zero
//!   point ([`InputQuant`]). The normalisation is affine in 8-bit pixels, so the quantization
//!   with one step per pixel level is exact: the edge recovers the FP32 tensor bit for bit,
//!   at one byte per value (150,528 B for 224×224×3).

use image::codecs::jpeg::JpegEncoder;
use image::DynamicImage;

use crate::error::RuntimeError;
use crate::manifest::{Color, Manifest};
use crate::preprocess;

/// One way of sending an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// The original bytes.
    Original,
    /// Shaped to the model's input and re-encoded as JPEG at this quality (1–100).
    Jpeg {
        /// The encoder's quality.
        quality: u8,
    },
    /// The preprocessed tensor quantized to INT8, exactly.
    Int8,
    /// Split inference at the cut `split@nodes` ([`crate::split`]): the device runs the head,
    /// the crossing tensor is sent as bytes. Made by a loaded [`crate::split::Head`], not by
    /// [`make`].
    Split {
        /// The cut's number: graph nodes before it.
        nodes: usize,
    },
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Form::Original => f.write_str("original"),
            Form::Jpeg { quality } => write!(f, "jpeg{quality}"),
            Form::Int8 => f.write_str("int8-tensor"),
            Form::Split { nodes } => write!(f, "split@{nodes}"),
        }
    }
}

impl std::str::FromStr for Form {
    type Err = String;

    /// `original`, `int8-tensor`, `jpegQ` with Q in 1..=100, or `split@N` (the names [`Form`]
    /// displays).
    fn from_str(s: &str) -> Result<Form, String> {
        if let Some(n) = s.strip_prefix("split@") {
            return n
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(|nodes| Form::Split { nodes })
                .ok_or_else(|| format!("`{s}`: expected split@N with N the cut's number (`ferry eval --splits` lists them)"));
        }
        match s {
            "original" => Ok(Form::Original),
            "int8-tensor" => Ok(Form::Int8),
            _ => s
                .strip_prefix("jpeg")
                .and_then(|q| q.parse::<u8>().ok())
                .filter(|q| (1..=100).contains(q))
                .map(|quality| Form::Jpeg { quality })
                .ok_or_else(|| format!("`{s}`: expected original, int8-tensor, jpegQ with Q in 1..=100, or split@N")),
        }
    }
}

/// A form made on the device from the original bytes ([`make`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Made {
    /// The original: nothing to make.
    Original,
    /// The shaped image, JPEG-encoded.
    Jpeg(Vec<u8>),
    /// The preprocessed input as NCHW signed bytes, with [`InputQuant::of`] the manifest.
    Int8(Vec<i8>),
}

/// Makes `form` of an original encoded image as the device does before an offload: decodes it
/// (with [`preprocess::decode_image`]'s bounds), shapes it, encodes it. The agent's shaper
/// and `ferry eval` both make forms here.
pub fn make(manifest: &Manifest, form: Form, original: &[u8]) -> Result<Made, RuntimeError> {
    if form == Form::Original {
        return Ok(Made::Original);
    }
    if let Form::Split { .. } = form {
        return Err(RuntimeError::Split { message: format!("{form} is made by running its head (ferry_runtime::split::Head)") });
    }
    let image = preprocess::decode_image(original, "the original image")?;
    Ok(match form {
        Form::Original | Form::Split { .. } => Made::Original,
        Form::Jpeg { quality } => Made::Jpeg(shaped_jpeg(manifest, &image, quality)?),
        Form::Int8 => Made::Int8(quantize_image(manifest, &image)),
    })
}

/// Per-channel affine quantization of the model's input: `x = scale[c] × (q − zero_point[c])`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputQuant {
    /// Step per channel.
    pub scale: Vec<f32>,
    /// Zero point per channel.
    pub zero_point: Vec<i32>,
}

impl InputQuant {
    /// The exact quantization of the manifest's normalisation: one step per pixel level
    /// (`scale = 1 / std`), with the zero point putting pixel 128 at 0 (`q = pixel − 128`).
    pub fn of(manifest: &Manifest) -> InputQuant {
        let (mean, std) = (&manifest.preprocess.mean, &manifest.preprocess.std);
        InputQuant {
            scale: std.iter().map(|s| 1.0 / s).collect(),
            zero_point: mean.iter().map(|m| m.round() as i32 - 128).collect(),
        }
    }
}

/// The preprocessed input of `image`, quantized: NCHW signed bytes.
pub fn quantize_image(manifest: &Manifest, image: &DynamicImage) -> Vec<i8> {
    let shaped = preprocess::shape_image(manifest, image);
    match manifest.preprocess.color {
        Color::Rgb => {
            let rgb = shaped.to_rgb8();
            let plane = (rgb.width() * rgb.height()) as usize;
            let mut out = vec![0i8; 3 * plane];
            for (i, px) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = (i16::from(px.0[c]) - 128) as i8;
                }
            }
            out
        }
        Color::Gray => shaped.to_luma8().pixels().map(|px| (i16::from(px.0[0]) - 128) as i8).collect(),
    }
}

/// Back to the FP32 tensor: `scale[c] × (q − zero_point[c])`, channel by NCHW plane. The
/// length must be the model's input length; the quantization has one entry per channel, or
/// one for all.
pub fn dequantize(manifest: &Manifest, quant: &InputQuant, data: &[i8]) -> Result<Vec<f32>, RuntimeError> {
    dequantize_with(manifest, quant, data.len(), |i| i32::from(data[i]))
}

/// [`dequantize`] of raw bytes from the wire: signed (i8) or unsigned (u8) values.
pub fn dequantize_bytes(manifest: &Manifest, quant: &InputQuant, data: &[u8], signed: bool) -> Result<Vec<f32>, RuntimeError> {
    dequantize_with(manifest, quant, data.len(), |i| if signed { i32::from(data[i] as i8) } else { i32::from(data[i]) })
}

fn dequantize_with(manifest: &Manifest, quant: &InputQuant, len: usize, value: impl Fn(usize) -> i32) -> Result<Vec<f32>, RuntimeError> {
    let channels = manifest.input.shape.get(1).copied().unwrap_or(1).max(1);
    if len != manifest.input_len() {
        return Err(RuntimeError::TensorShape {
            model: manifest.name.clone(),
            expected: manifest.input.shape.clone(),
            expected_len: manifest.input_len(),
            got: vec![len],
            len,
        });
    }
    let per_channel = quant.scale.len() == channels && quant.zero_point.len() == channels;
    let shared = quant.scale.len() == 1 && quant.zero_point.len() == 1;
    if !(per_channel || shared) {
        return Err(RuntimeError::Image {
            source_name: "the INT8 input tensor".into(),
            message: format!(
                "{} scales and {} zero points: expected one, or one per channel ({channels})",
                quant.scale.len(),
                quant.zero_point.len()
            ),
        });
    }
    let plane = (len / channels).max(1);
    Ok((0..len)
        .map(|i| {
            let c = if shared { 0 } else { (i / plane).min(channels - 1) };
            quant.scale[c] * (value(i) - quant.zero_point[c]) as f32
        })
        .collect())
}

/// The model's input tensor from a shaped image's encoded bytes, as they arrive (the edge's
/// and the agent's one way of reading [`Form::Jpeg`]).
pub fn tensor_of_shaped(manifest: &Manifest, bytes: &[u8], source_name: &str) -> Result<Vec<f32>, RuntimeError> {
    let image = preprocess::decode_image(bytes, source_name)?;
    preprocess::shaped_image_to_tensor(manifest, &image, source_name)
}

/// The model's input tensor from a quantized tensor as it arrives: its `(scale, zero point)`
/// per channel, its shape (checked against the model's) and its raw i8 (`signed`) or u8 bytes.
pub fn tensor_of_quantized(
    manifest: &Manifest,
    params: impl Iterator<Item = (f32, i32)>,
    shape: &[usize],
    bytes: &[u8],
    signed: bool,
) -> Result<Vec<f32>, RuntimeError> {
    let (scale, zero_point) = params.unzip();
    let data = dequantize_bytes(manifest, &InputQuant { scale, zero_point }, bytes, signed)?;
    preprocess::check_tensor(manifest, shape, &data)?;
    Ok(data)
}

/// The image shaped to the model's input and encoded as JPEG at `quality` (clamped to 1–100).
pub fn shaped_jpeg(manifest: &Manifest, image: &DynamicImage, quality: u8) -> Result<Vec<u8>, RuntimeError> {
    let shaped = preprocess::shape_image(manifest, image);
    let mut out = Vec::new();
    let encoder = JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
    let encoded = match manifest.preprocess.color {
        Color::Rgb => shaped.to_rgb8().write_with_encoder(encoder),
        Color::Gray => shaped.to_luma8().write_with_encoder(encoder),
    };
    encoded.map_err(|e| RuntimeError::Image { source_name: "the shaped image".into(), message: format!("JPEG encoding: {e}") })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/efficientnet-lite0/manifest.toml");
        Manifest::load(&dir).unwrap()
    }

    fn picture() -> DynamicImage {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/images/cat.jpg");
        preprocess::load_image(&p).unwrap()
    }

    #[test]
    fn the_int8_form_is_exact() {
        let (m, img) = (manifest(), picture());
        let q = quantize_image(&m, &img);
        let back = dequantize(&m, &InputQuant::of(&m), &q).unwrap();
        let want = preprocess::image_to_tensor(&m, &img);
        assert_eq!(back.len(), want.len());
        let worst = back.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "largest difference {worst}");
        assert_eq!(q.len(), 3 * 224 * 224);
    }

    #[test]
    fn a_shaped_jpeg_is_the_model_input_size_and_small() {
        let (m, img) = (manifest(), picture());
        let jpeg = shaped_jpeg(&m, &img, 80).unwrap();
        let decoded = preprocess::decode_image(&jpeg, "shaped").unwrap();
        assert_eq!((decoded.width(), decoded.height()), (224, 224));
        assert!(preprocess::shaped_image_to_tensor(&m, &decoded, "shaped").is_ok());
        // Not the model's size: refused, naming both sizes.
        let e = preprocess::shaped_image_to_tensor(&m, &img, "original").unwrap_err().to_string();
        assert!(e.contains("224×224") && e.contains("original"), "{e}");
        assert!(jpeg.len() < 3 * 224 * 224 / 4, "{} bytes", jpeg.len());
    }

    #[test]
    fn dequantize_refuses_a_wrong_length() {
        let m = manifest();
        assert!(dequantize(&m, &InputQuant::of(&m), &[0i8; 10]).is_err());
    }
}
