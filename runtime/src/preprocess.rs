//! Turning an input into the tensor a model takes: images are decoded (PNG/JPEG, bounded in
//! size), resized, centre-cropped and normalised as the manifest says; raw tensors are checked
//! against the manifest's shape.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
pub use image::DynamicImage;
use image::{ImageReader, Limits};

use crate::error::RuntimeError;
use crate::manifest::{Color, Manifest};

/// The largest image side accepted (pixels); larger images are refused before decoding.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// The most memory the decoder may allocate for one image.
pub const MAX_IMAGE_ALLOC: u64 = 256 * 1024 * 1024;

/// Decodes an encoded image (PNG or JPEG); `source_name` names it in errors.
pub fn decode_image(bytes: &[u8], source_name: &str) -> Result<DynamicImage, RuntimeError> {
    let fail = |message: String| RuntimeError::Image { source_name: source_name.to_string(), message };
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| fail(e.to_string()))?;
    if reader.format().is_none() {
        return Err(fail("not a PNG or JPEG image".to_string()));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    reader.decode().map_err(|e| fail(e.to_string()))
}

/// Reads and decodes the image file at `path`.
pub fn load_image(path: &Path) -> Result<DynamicImage, RuntimeError> {
    let bytes = std::fs::read(path).map_err(|e| RuntimeError::Image {
        source_name: path.display().to_string(),
        message: e.to_string(),
    })?;
    decode_image(&bytes, &path.display().to_string())
}

/// The most pixels the resize step may produce: 16 squares of the model's resize side (an
/// aspect ratio up to 16:1 is resized whole, exactly as the model's own preprocessing does).
/// A more extreme image (an 8192×1 PNG would otherwise be scaled to 2,097,152×256) has only
/// the part the centre crop keeps resized, so memory and time stay bounded by the output.
pub fn max_resized_pixels(resize_shorter: u32) -> u64 {
    16 * u64::from(resize_shorter.max(1)).pow(2)
}

/// Source pixels kept beyond the crop on each side when only the cropped part is resized: the
/// bilinear filter's support, so the kept part resizes as it would inside the whole image.
const CROP_MARGIN: u32 = 2;

/// Prepares `image` for the model: shorter side to `resize_shorter` (bilinear), centre crop to
/// the input's H×W, `(pixel - mean) / std`, laid out NCHW. Memory and time are bounded by
/// [`max_resized_pixels`] whatever the image's shape.
pub fn image_to_tensor(manifest: &Manifest, image: &DynamicImage) -> Vec<f32> {
    normalise(manifest, &shape_image(manifest, image))
}

/// The geometric half of the preprocessing: shorter side to `resize_shorter`, centre crop to
/// the input's H×W. What a device sends when it ships the image already shaped to the model
/// (see [`crate::forms`]); [`image_to_tensor`] is this then [`normalise`].
pub fn shape_image(manifest: &Manifest, image: &DynamicImage) -> DynamicImage {
    let (h, w) = input_size(manifest);
    resize_and_crop(image, manifest.preprocess.resize_shorter, w, h)
}

/// The model's input height and width.
fn input_size(manifest: &Manifest) -> (u32, u32) {
    (manifest.input.shape[2] as u32, manifest.input.shape[3] as u32)
}

/// An image already shaped to the model's input (see [`shape_image`]) made into the tensor:
/// only normalised. An image of any other size is refused, naming both sizes.
pub fn shaped_image_to_tensor(manifest: &Manifest, image: &DynamicImage, source_name: &str) -> Result<Vec<f32>, RuntimeError> {
    let (h, w) = input_size(manifest);
    if (image.width(), image.height()) != (w, h) {
        return Err(RuntimeError::Image {
            source_name: source_name.to_string(),
            message: format!(
                "a shaped image must be the model's input size {w}×{h}, this one is {}×{}",
                image.width(),
                image.height()
            ),
        });
    }
    Ok(normalise(manifest, image))
}

/// `(pixel - mean) / std` per channel, NCHW, of an image of the model's input size.
pub fn normalise(manifest: &Manifest, cropped: &DynamicImage) -> Vec<f32> {
    let (mean, std) = (&manifest.preprocess.mean, &manifest.preprocess.std);
    let plane = (cropped.width() * cropped.height()) as usize;
    match manifest.preprocess.color {
        Color::Rgb => {
            let rgb = cropped.to_rgb8();
            let mut out = vec![0f32; 3 * plane];
            for (i, px) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = (px.0[c] as f32 - mean[c]) / std[c];
                }
            }
            out
        }
        Color::Gray => cropped.to_luma8().pixels().map(|px| (px.0[0] as f32 - mean[0]) / std[0]).collect(),
    }
}

/// Scales `image` so its shorter side is `target` and crops the centre `w`×`h`.
fn resize_and_crop(image: &DynamicImage, target: u32, w: u32, h: u32) -> DynamicImage {
    let (iw, ih) = (image.width().max(1), image.height().max(1));
    let scale = f64::from(target) / f64::from(iw.min(ih));
    let scaled = |side: u32, at_least: u32| ((f64::from(side) * scale).round() as u32).max(at_least);
    let (rw, rh) = (scaled(iw, w), scaled(ih, h));
    if u64::from(rw) * u64::from(rh) <= max_resized_pixels(target) {
        let resized = if (rw, rh) == (iw, ih) { image.clone() } else { image.resize_exact(rw, rh, FilterType::Triangle) };
        return resized.crop_imm((rw - w) / 2, (rh - h) / 2, w, h);
    }
    // Only the source window the crop keeps (plus the filter's margin) is resized.
    let window = |side: u32, keep: u32| (((f64::from(keep) / scale).ceil() as u32).saturating_add(2 * CROP_MARGIN)).min(side);
    let (sw, sh) = (window(iw, w), window(ih, h));
    let part = image.crop_imm((iw - sw) / 2, (ih - sh) / 2, sw, sh);
    let (pw, ph) = (scaled(sw, w), scaled(sh, h));
    let resized = part.resize_exact(pw, ph, FilterType::Triangle);
    resized.crop_imm((pw - w) / 2, (ph - h) / 2, w, h)
}

/// Checks a raw tensor against the model's input shape. A missing leading batch dimension of 1
/// is accepted (`[C, H, W]` for `[1, C, H, W]`).
pub fn check_tensor(manifest: &Manifest, shape: &[usize], data: &[f32]) -> Result<(), RuntimeError> {
    let expected = &manifest.input.shape;
    let same = shape == expected.as_slice() || (shape.len() + 1 == expected.len() && shape == &expected[1..]);
    if !same || data.len() != manifest.input_len() {
        return Err(RuntimeError::TensorShape {
            model: manifest.name.clone(),
            expected: expected.clone(),
            expected_len: manifest.input_len(),
            got: shape.to_vec(),
            len: data.len(),
        });
    }
    Ok(())
}
