//! Makes an image request's input into a shaped form before an offload, with the model's
//! manifest ([`ferry_runtime::forms::make`]: decode, resize and crop, encode), for the
//! executor ([`ferry_exec::Shaper`]).

use std::collections::HashMap;
use std::sync::Arc;

use ferry_protocol::{DType, ImageFormat, Input, Quantized, Request, Shape, Tensor};
use ferry_runtime::forms::{self, Form, InputQuant, Made};
use ferry_runtime::Manifest;

/// The manifests of the models the agent knows, by name.
pub struct ManifestShaper {
    manifests: HashMap<String, Arc<Manifest>>,
}

impl ManifestShaper {
    /// Over these manifests.
    pub fn new(manifests: HashMap<String, Arc<Manifest>>) -> Self {
        Self { manifests }
    }
}

/// The protocol input for a made form (`None` for the original).
pub fn input_of(manifest: &Manifest, made: Made) -> Result<Option<Input>, String> {
    Ok(match made {
        Made::Original => None,
        Made::Jpeg(bytes) => Some(Input::ShapedImage { format: ImageFormat::Jpeg, bytes }),
        Made::Int8(values) => {
            let quant = InputQuant::of(manifest);
            let dims: Vec<u32> = manifest.input.shape.iter().map(|&d| u32::try_from(d).unwrap_or(u32::MAX)).collect();
            let shape = Shape::new(&dims).map_err(|e| e.to_string())?;
            let bytes = values.into_iter().map(|v| v as u8).collect();
            let tensor = Tensor::new(DType::I8, shape, bytes).map_err(|e| e.to_string())?;
            Some(Input::Quantized(Quantized::new(&quant.scale, &quant.zero_point, tensor).map_err(|e| e.to_string())?))
        }
    })
}

impl ferry_exec::Shaper for ManifestShaper {
    fn shape(&self, request: &Request, form: &str) -> Result<Request, String> {
        let manifest = self.manifests.get(request.model.as_str()).ok_or_else(|| format!("no manifest for `{}`", request.model.as_str()))?;
        let form: Form = form.parse()?;
        let Input::Image { bytes, .. } = &request.input else {
            return Err("only an original image input can be shaped".to_string());
        };
        let made = forms::make(manifest, form, bytes).map_err(|e| e.to_string())?;
        let Some(input) = input_of(manifest, made)? else { return Ok(request.clone()) };
        Ok(Request {
            request_id: request.request_id,
            device_id: request.device_id,
            model: request.model,
            precision: request.precision,
            deadline_ms: request.deadline_ms,
            sent_at_us: request.sent_at_us,
            input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_exec::Shaper;
    use ferry_protocol::{DeviceId, ModelName, Precision};
    use ferry_runtime::ModelStore;

    fn shaper_and_request() -> (ManifestShaper, Request) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let manifest = ModelStore::new(root.join("models")).manifest("efficientnet-lite0").unwrap();
        let bytes = std::fs::read(root.join("models/images/espresso.jpg")).unwrap();
        let request = Request {
            request_id: 7,
            device_id: DeviceId::new("dev-1").unwrap(),
            model: ModelName::new("efficientnet-lite0").unwrap(),
            precision: Precision::Fp32,
            deadline_ms: Some(500),
            sent_at_us: 1,
            input: Input::Image { format: ImageFormat::Jpeg, bytes },
        };
        let manifests = HashMap::from([("efficientnet-lite0".to_string(), Arc::new(manifest))]);
        (ManifestShaper::new(manifests), request)
    }

    #[test]
    fn an_image_becomes_a_224_jpeg_or_the_exact_int8_tensor_and_keeps_its_envelope() {
        let (shaper, request) = shaper_and_request();
        let jpeg = shaper.shape(&request, "jpeg85").unwrap();
        assert_eq!((jpeg.request_id, jpeg.deadline_ms), (7, Some(500)));
        let Input::ShapedImage { format: ImageFormat::Jpeg, bytes } = &jpeg.input else { panic!("{:?}", jpeg.input.as_ref()) };
        let decoded = ferry_runtime::preprocess::decode_image(bytes, "test").unwrap();
        assert_eq!((decoded.width(), decoded.height()), (224, 224));
        let original = match &request.input {
            Input::Image { bytes, .. } => bytes.len(),
            _ => unreachable!(),
        };
        assert!(bytes.len() * 3 < original, "{} vs {original}", bytes.len());

        let int8 = shaper.shape(&request, "int8-tensor").unwrap();
        let Input::Quantized(q) = &int8.input else { panic!("not quantized") };
        assert_eq!(q.as_ref().tensor.data().len(), 3 * 224 * 224);
    }

    #[test]
    fn what_cannot_be_shaped_says_why() {
        let (shaper, mut request) = shaper_and_request();
        assert!(shaper.shape(&request, "png").unwrap_err().contains("expected"));
        request.input = Input::Image { format: ImageFormat::Jpeg, bytes: b"not an image".to_vec() };
        assert!(!shaper.shape(&request, "jpeg85").unwrap_err().is_empty());
        request.model = ModelName::new("unknown").unwrap();
        assert!(shaper.shape(&request, "jpeg85").unwrap_err().contains("no manifest"));
    }
}
