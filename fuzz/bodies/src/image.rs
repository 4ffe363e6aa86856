//! Preprocessing an untrusted image, as the agent's API and the edge's workers do: decode
//! (PNG or JPEG), then for every shipped model resize, crop and normalise. Any bytes give an
//! error or a tensor of exactly the model's input size with finite values; never a panic.
//!
//! Memory is asserted from the code's own limits (measured by [`crate::meter`] when it is the
//! global allocator, as in the fuzz target and the replay test):
//!
//! - decoding allocates at most [`decode_bound`]: the decoder's own cap
//!   [`MAX_IMAGE_ALLOC`] plus [`DECODER_SLACK`] for its tables and row buffers;
//! - preprocessing a decoded image allocates at most [`preprocess_bound`], which depends on
//!   the model's resize side only, never on the image's shape (an 8192×1 PNG once asked for
//!   2,097,152×256 pixels).

use ferry_runtime::preprocess::{self, max_resized_pixels, MAX_IMAGE_ALLOC, MAX_IMAGE_SIDE};
use ferry_runtime::Manifest;

use crate::{meter, models};

/// What a decoder may allocate beyond the decoded pixels: Huffman and quantisation tables,
/// a few rows, zlib's window. 16 MiB is generous for both PNG and JPEG.
pub const DECODER_SLACK: usize = 16 << 20;

/// The most bytes decoding one image may allocate.
pub fn decode_bound() -> usize {
    MAX_IMAGE_ALLOC as usize + DECODER_SLACK
}

/// The most bytes preprocessing a decoded image for `manifest` may allocate. `resize` keeps
/// the pixel type (at most 8 bytes a pixel from PNG; image's resampler works in 16-byte
/// RGBA f32): its vertical pass holds source width × new height ≤ [`MAX_IMAGE_SIDE`] × side
/// f32 pixels (the shorter side becomes `side`), its result and a crop or copy of it at most
/// [`max_resized_pixels`] each; then the crop as RGB8 and the f32 tensor; 1 MiB for the rest.
pub fn preprocess_bound(manifest: &Manifest) -> usize {
    let side = u64::from(manifest.preprocess.resize_shorter);
    let pixels = u64::from(MAX_IMAGE_SIDE) * side
        + 3 * max_resized_pixels(manifest.preprocess.resize_shorter);
    let tensor = 4 * manifest.input_len() as u64 * 2;
    usize::try_from(16 * pixels + tensor + (1 << 20)).unwrap_or(usize::MAX)
}

/// The body: decode `data`, preprocess it for every shipped model.
pub fn run(data: &[u8]) {
    let (decoded, decode_peak) = meter::measure(|| preprocess::decode_image(data, "fuzz input"));
    assert!(
        decode_peak <= decode_bound(),
        "decoding {} bytes allocated {decode_peak} bytes, over the bound of {}",
        data.len(),
        decode_bound()
    );
    let image = match decoded {
        Ok(image) => image,
        Err(e) => {
            assert!(
                e.to_string().contains("fuzz input"),
                "the error names its source: {e}"
            );
            return;
        }
    };
    assert!(image.width() <= MAX_IMAGE_SIDE && image.height() <= MAX_IMAGE_SIDE);
    for manifest in models::manifests() {
        let (tensor, peak) = meter::measure(|| preprocess::image_to_tensor(manifest, &image));
        assert_eq!(
            tensor.len(),
            manifest.input_len(),
            "{}: a {}×{} image gave a tensor of the wrong size",
            manifest.name,
            image.width(),
            image.height()
        );
        assert!(
            tensor.iter().all(|v| v.is_finite()),
            "{}: non-finite input value",
            manifest.name
        );
        let bound = preprocess_bound(manifest);
        assert!(
            peak <= bound,
            "{}: preprocessing a {}×{} {:?} image allocated {peak} bytes, over the bound of {bound}",
            manifest.name,
            image.width(),
            image.height(),
            image.color()
        );
    }
}
