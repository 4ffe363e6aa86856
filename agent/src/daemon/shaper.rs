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
