//! Decoding and checking a request's input against its model before the request is decided
//! on: an input no path could run (an image that does not decode, a tensor of the wrong shape
//! or type) is a client error, answered at once — it never takes the local runner, never goes
//! to the edge, and so is never charged to either path's estimates.
//!
//! An image is decoded and preprocessed here with the runtime's bounded code (the decoder's
//! size and memory limits, the resize bounded by the model's output); the tensor it gives is
//! what the local path then runs, so no image is decoded twice on the device.

use ferry_protocol::{DType, Input};
use ferry_runtime::{forms, preprocess, Manifest};

/// Why an input cannot be run by its model (the message is the API's `error`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Checks `input` against `manifest` (the model's, when the device has it; without one an
/// image is still decoded, a tensor passed on as it is). `Ok(Some(tensor))`: the image's
/// preprocessed tensor, ready for the model.
pub fn check(manifest: Option<&Manifest>, input: &Input) -> Result<Option<Vec<f32>>, InvalidInput> {
    match input {
        Input::Image { bytes, .. } => {
            let image = preprocess::decode_image(bytes, "the request's image")
                .map_err(|e| InvalidInput(e.to_string()))?;
            Ok(manifest.map(|m| preprocess::image_to_tensor(m, &image)))
        }
        Input::Tensor(t) => {
            let Some(m) = manifest else { return Ok(None) };
            let t = t.as_ref();
            if t.dtype() != DType::F32 {
                return Err(InvalidInput(format!(
                    "a tensor of {:?}: model `{}` takes f32",
                    t.dtype(),
                    m.name
                )));
            }
            let shape: Vec<usize> = t.shape().dims().iter().map(|&d| d as usize).collect();
            let values: Vec<f32> = t
                .f32_values()
                .ok_or_else(|| InvalidInput("the tensor's bytes are not f32 values".to_string()))?
                .collect();
            preprocess::check_tensor(m, &shape, &values)
                .map_err(|e| InvalidInput(e.to_string()))?;
            Ok(None)
        }
        // The wire's shaped forms (the agent makes them for the edge; read the same way here).
        Input::ShapedImage { bytes, .. } => {
            let Some(m) = manifest else { return Ok(None) };
            forms::tensor_of_shaped(m, bytes, "the request's shaped image").map(Some).map_err(|e| InvalidInput(e.to_string()))
        }
        Input::Quantized(q) => {
            let Some(m) = manifest else { return Ok(None) };
            let q = q.as_ref();
            let shape: Vec<usize> = q.tensor.shape().dims().iter().map(|&d| d as usize).collect();
            forms::tensor_of_quantized(m, q.params(), &shape, q.tensor.data(), q.tensor.dtype() == DType::I8)
                .map(Some)
                .map_err(|e| InvalidInput(e.to_string()))
        }
        Input::Split { .. } => Err(InvalidInput("a split tensor is made by the agent for the edge; send the image".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::{ImageFormat, Shape, Tensor};
    use ferry_runtime::ModelStore;
    use std::path::Path;

    fn digits() -> Manifest {
        ModelStore::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
            .manifest("digits")
            .unwrap()
    }

    #[test]
    fn a_junk_image_is_refused_naming_the_image() {
        let e = check(
            Some(&digits()),
            &Input::Image {
                format: ImageFormat::Png,
                bytes: b"not a png".to_vec(),
            },
        )
        .unwrap_err();
        assert!(e.0.contains("image"), "{e}");
    }

    #[test]
    fn a_tensor_of_the_wrong_shape_is_refused_naming_the_expected_shape() {
        let t = Tensor::new(
            DType::F32,
            Shape::new(&[1, 1, 4, 4]).unwrap(),
            vec![0u8; 16 * 4],
        )
        .unwrap();
        let e = check(Some(&digits()), &Input::Tensor(t)).unwrap_err();
        assert!(e.0.contains("[1, 1, 8, 8]"), "{e}");
    }

    #[test]
    fn a_good_image_comes_back_as_the_models_tensor() {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/images/digit-7.png"),
        )
        .unwrap();
        let m = digits();
        let t = check(
            Some(&m),
            &Input::Image {
                format: ImageFormat::Png,
                bytes,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.len(), m.input_len());
    }
}
