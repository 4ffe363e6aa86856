//! Bad input gets a clear error that names the file (or model) and what is wrong; never a panic.

mod common;

use std::path::Path;
use std::sync::Arc;

use ferry_runtime::{preprocess, LocalModel, Manifest, ModelStore, Precision, RuntimeError, Threads, TractEngine};

/// A copy of the digits model folder in a temp dir, so a test can break one file of it.
fn digits_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("digits");
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(common::models_dir().join("digits")).unwrap().flatten() {
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    dir
}

fn load_from(dir: &Path, precision: Precision) -> Result<LocalModel, RuntimeError> {
    ModelStore::new(dir).load(&TractEngine::new(Threads(1)), "digits", precision)
}

#[test]
fn a_missing_model_file_names_the_file() {
    let dir = digits_copy();
    let file = dir.path().join("digits/digits.int8.onnx");
    std::fs::remove_file(&file).unwrap();
    let err = load_from(dir.path(), Precision::Int8).unwrap_err();
    assert!(matches!(err, RuntimeError::ModelFile { .. }), "{err:?}");
    assert!(err.to_string().contains(&file.display().to_string()), "{err}");
}

#[test]
fn a_corrupt_model_file_names_the_file() {
    let dir = digits_copy();
    let file = dir.path().join("digits/digits.fp32.onnx");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&file, &bytes).unwrap();
    let err = load_from(dir.path(), Precision::Fp32).unwrap_err();
    assert!(matches!(err, RuntimeError::ModelFile { .. }), "{err:?}");
    assert!(err.to_string().contains("digits.fp32.onnx"), "{err}");

    std::fs::write(&file, b"this is not an onnx model").unwrap();
    let err = load_from(dir.path(), Precision::Fp32).unwrap_err();
    assert!(err.to_string().contains("digits.fp32.onnx"), "{err}");
}

#[test]
fn a_manifest_that_does_not_match_the_model_input_is_refused() {
    let dir = digits_copy();
    let manifest = dir.path().join("digits/manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("shape = [1, 1, 8, 8]", "shape = [1, 1, 16, 16]").replace("resize_shorter = 8", "resize_shorter = 16")).unwrap();
    let err = load_from(dir.path(), Precision::Fp32).unwrap_err();
    assert!(matches!(err, RuntimeError::ManifestMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("digits.fp32.onnx") && msg.contains("[1, 1, 16, 16]"), "{msg}");

    std::fs::write(&manifest, text.replace("name = \"input\"", "name = \"pixels\"")).unwrap();
    let err = load_from(dir.path(), Precision::Fp32).unwrap_err().to_string();
    assert!(err.contains("`pixels`"), "{err}");

    std::fs::write(&manifest, text.replace("classes = 10", "classes = 12")).unwrap();
    let err = load_from(dir.path(), Precision::Fp32).unwrap_err().to_string();
    assert!(err.contains("labels") || err.contains("12"), "{err}");
}

#[test]
fn a_broken_manifest_names_the_file_and_the_key() {
    let dir = digits_copy();
    let manifest = dir.path().join("digits/manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("[input]", "[input]\nchannels = 1")).unwrap();
    let err = Manifest::load(&manifest).unwrap_err().to_string();
    assert!(err.contains("manifest.toml") && err.contains("channels"), "{err}");
}

#[test]
fn an_unknown_model_lists_the_known_ones() {
    let err = common::store().manifest("resnet-9000").unwrap_err().to_string();
    assert!(err.contains("resnet-9000") && err.contains("digits") && err.contains("efficientnet-lite0"), "{err}");
    let err = common::store().manifest("../digits").unwrap_err();
    assert!(matches!(err, RuntimeError::UnknownModel { .. }), "{err:?}");
}

#[test]
fn unreadable_images_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, b"\xff\xd8\xff\xe0 truncated jpeg").unwrap();
    let err = preprocess::load_image(&garbage).unwrap_err().to_string();
    assert!(err.contains("garbage.jpg"), "{err}");

    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"hello").unwrap();
    let err = preprocess::load_image(&text).unwrap_err().to_string();
    assert!(err.contains("notes.png") && err.contains("not a PNG or JPEG"), "{err}");

    let err = preprocess::load_image(&dir.path().join("absent.png")).unwrap_err().to_string();
    assert!(err.contains("absent.png"), "{err}");
}

#[test]
fn an_image_larger_than_the_limit_is_refused_before_decoding() {
    // A valid PNG header that claims 100000 x 100000 pixels.
    let mut png = Vec::new();
    let img = image::RgbImage::new(1, 1);
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    // Patch IHDR width/height (bytes 16..24) and its CRC so the decoder reads the header as valid.
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = preprocess::decode_image(&png, "huge.png").unwrap_err().to_string();
    assert!(err.contains("huge.png"), "{err}");
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn a_tensor_of_the_wrong_shape_says_what_was_expected() {
    let model = common::load("digits", Precision::Int8);
    let err = model.infer_tensor(&[1, 1, 4, 4], &[0.0; 16], 1).unwrap_err();
    assert!(matches!(err, RuntimeError::TensorShape { .. }), "{err:?}");
    assert!(err.to_string().contains("[1, 1, 8, 8]"), "{err}");
    // The right shape with the wrong number of values is refused too.
    assert!(model.infer_tensor(&[1, 1, 8, 8], &[0.0; 63], 1).is_err());
    // The batch dimension may be left out.
    assert!(model.infer_tensor(&[1, 8, 8], &[0.0; 64], 1).is_ok());
    let _ = Arc::new(model);
}
