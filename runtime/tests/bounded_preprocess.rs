//! Preprocessing is bounded in memory after every step, not only the decode: issue 14 found a
//! 104-byte 8192×1 PNG scaled to 2,097,152×256 (1.66 GB RSS, 13 s) and a 142-byte RGBA16 one
//! aborting the process on a 4 GiB allocation — on the agent and on the shared edge.
//!
//! A counting allocator measures the peak of live heap bytes around each call. This file holds
//! one test only, so no other test's allocations run on another thread meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_runtime::manifest::Manifest;
use ferry_runtime::preprocess;
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, Rgba};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap bytes allocated by `f` above what was live when it started.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn png(image: DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png).expect("encode png");
    bytes
}

#[test]
fn extreme_aspect_ratios_are_preprocessed_within_a_few_mebibytes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = Manifest::load(&root.join("models/efficientnet-lite0/manifest.toml")).expect("manifest");
    let rgb8 = |w, h| DynamicImage::ImageRgb8(ImageBuffer::from_pixel(w, h, Rgb([200u8, 30, 90])));
    let rgba16 = |w, h| DynamicImage::ImageRgba16(ImageBuffer::from_pixel(w, h, Rgba([50_000u16, 10, 9_000, 65_535])));
    let cases = [
        ("8192x1 rgb8", png(rgb8(8192, 1))),
        ("1x8192 rgb8", png(rgb8(1, 8192))),
        ("8192x1 rgba16", png(rgba16(8192, 1))),
        ("8192x3 rgba16", png(rgba16(8192, 3))),
        // A 16:1 image is resized whole (the ordinary path): bounded too.
        ("4096x256 rgb8", png(rgb8(4096, 256))),
    ];
    // The tensor itself is 3×224×224 f32 = 588 KiB; the resized image at most 16·256² pixels.
    const LIMIT: usize = 32 << 20;
    for (name, bytes) in &cases {
        assert!(bytes.len() < 64 << 10, "{name}: the test image is small ({} bytes)", bytes.len());
        let (tensor, peak) = peak_during(|| {
            let image = preprocess::decode_image(bytes, name).expect("decodes");
            preprocess::image_to_tensor(&manifest, &image)
        });
        assert_eq!(tensor.len(), manifest.input_len(), "{name}");
        assert!(tensor.iter().all(|v| v.is_finite()), "{name}");
        assert!(peak < LIMIT, "{name}: preprocessing peaked at {peak} heap bytes (limit {LIMIT})");
    }

    // The crop keeps the image's colour: a uniform picture gives a uniform tensor, the same
    // through both paths.
    let uniform = |w, h| preprocess::image_to_tensor(&manifest, &rgb8(w, h));
    let (whole, sliver) = (uniform(300, 300), uniform(8192, 1));
    for (a, b) in whole.iter().zip(&sliver) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}
