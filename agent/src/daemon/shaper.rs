//! Makes an image request's input into the form its offload sends, for the executor
//! ([`ferry_exec::Shaper`]): a shaped form with the model's manifest
//! ([`ferry_runtime::forms::make`]: decode, resize and crop, encode), or a split's crossing
//! tensor by running the cut's head ([`ferry_runtime::split::Head`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ferry_decide::{FormId, ModelId, Observation, Targets};
use ferry_protocol::{DType, ImageFormat, Input, Quantized, Request, Shape, Tensor};
use ferry_runtime::forms::{self, Form, InputQuant, Made};
use ferry_runtime::split::{Head, Splitter};
use ferry_runtime::{preprocess, Cancel, Engine, Manifest, RuntimeError};

use super::emulate::Slowdown;

/// The manifests of the models the agent knows, by name, and the heads of the splits offered.
pub struct ManifestShaper {
    manifests: HashMap<String, Arc<Manifest>>,
    /// By (model, `split@N`).
    heads: HashMap<(String, String), Head>,
    /// Making a form is the board's compute too: an emulated board is slower at it.
    slowdown: Slowdown,
}

impl ManifestShaper {
    /// Over these manifests and heads, on a board `slowdown` times slower than this machine.
    pub fn new(manifests: HashMap<String, Arc<Manifest>>, heads: HashMap<(String, String), Head>, slowdown: Slowdown) -> Self {
        Self { manifests, heads, slowdown }
    }

    /// [`ferry_exec::Shaper::shape`] at this machine's speed.
    fn make(&self, request: &Request, form: &str) -> Result<Request, String> {
        let manifest = self.manifests.get(request.model.as_str()).ok_or_else(|| format!("no manifest for `{}`", request.model.as_str()))?;
        let form: Form = form.parse()?;
        let Input::Image { bytes, .. } = &request.input else {
            return Err("only an original image input can be shaped".to_string());
        };
        let input = if let Form::Split { .. } = form {
            let key = (request.model.as_str().to_string(), form.to_string());
            let head = self.heads.get(&key).ok_or_else(|| format!("no head loaded for {} of `{}`", key.1, key.0))?;
            let image = preprocess::decode_image(bytes, "the request's image").map_err(|e| e.to_string())?;
            let (q, _) = head.run_image(&image, &Cancel::new()).map_err(|e| e.to_string())?;
            split_input(head, q)?
        } else {
            let made = forms::make(manifest, form, bytes).map_err(|e| e.to_string())?;
            let Some(input) = input_of(manifest, made)? else { return Ok(request.clone()) };
            input
        };
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

/// Loads the head of every split form the decision may choose (`targets`' forms named
/// `split@N`), cut into `cache`. A cut the model's FP32 file does not have is an error.
pub fn load_heads(
    engine: &dyn Engine,
    manifests: &HashMap<String, Arc<Manifest>>,
    targets: &Targets,
    cache: &std::path::Path,
) -> Result<HashMap<(String, String), Head>, RuntimeError> {
    let mut heads = HashMap::new();
    for m in 0..targets.model_count() {
        let model = targets.model_name(ModelId(m as u8));
        let splits: Vec<&str> = targets.forms_of(ModelId(m as u8)).iter().map(|f| f.name.as_str()).filter(|n| n.starts_with("split@")).collect();
        if splits.is_empty() {
            continue;
        }
        let manifest = manifests.get(model).ok_or_else(|| RuntimeError::Split { message: format!("model `{model}`: no manifest on this device to cut it by") })?;
        let splitter = Splitter::open(manifest.clone())?;
        for name in splits {
            let cut = splitter.by_name(name).ok_or_else(|| RuntimeError::Split {
                message: format!(
                    "model `{model}` has no candidate cut {name} (its FP32 file has {})",
                    splitter.cuts().iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
                ),
            })?;
            heads.insert((model.to_string(), name.to_string()), splitter.load_head(engine, cut, cache)?);
        }
    }
    Ok(heads)
}

/// Times each loaded head at start-up (its second run on a blank input, the first warms it;
/// stretched by the emulated board's slowdown),
/// as the observation that seeds the head's making time: the measured head, plus the part of
/// the manifest's making time that is not the head (decoding and preprocessing) until the
/// first real split offload measures it all.
pub fn measure_heads(shaper: &ManifestShaper, targets: &Targets) -> Vec<Observation> {
    let mut out = Vec::new();
    for ((model, name), head) in &shaper.heads {
        let Some(manifest) = shaper.manifests.get(model) else { continue };
        let (Some(model_id), Some(form)) = (targets.model_id(model), form_id(targets, model, name)) else { continue };
        let blank = vec![0.0f32; manifest.input_len()];
        let mut taken = None;
        for _ in 0..2 {
            let started = Instant::now();
            if head.run_tensor(&blank, &Cancel::new()).is_err() {
                break;
            }
            taken = Some(started.elapsed());
        }
        let Some(taken) = taken.map(|t| shaper.slowdown.stretch(t)) else { continue };
        let figures = manifest.evaluation.as_ref().and_then(|e| e.cut(name));
        let rest_ms = figures.map_or(0.0, |c| (c.make_ms - c.head_ms).max(0.0));
        let encode_us = (taken.as_secs_f64() * 1e6 + rest_ms * 1e3) as u32;
        let up_bytes = targets.form(model_id, form).map_or(0, |f| f.prior_up_bytes);
        tracing::info!(model = %model, form = %name, head_ms = taken.as_secs_f64() * 1e3, "split head measured");
        out.push(Observation::Shaped { model: model_id, form, up_bytes, encode_us });
    }
    out
}

fn form_id(targets: &Targets, model: &str, name: &str) -> Option<FormId> {
    let m = targets.model_id(model)?;
    targets.forms_of(m).iter().position(|f| f.name == name).map(|k| FormId(k as u8 + 1))
}

/// The protocol input of a split: the crossing tensor as u8 with its one scale.
fn split_input(head: &Head, q: ferry_runtime::split::activation::Quantized) -> Result<Input, String> {
    let cut = head.cut();
    let dims: Vec<u32> = cut.shape.iter().map(|&d| u32::try_from(d).unwrap_or(u32::MAX)).collect();
    let shape = Shape::new(&dims).map_err(|e| e.to_string())?;
    let tensor = Tensor::new(DType::U8, shape, q.values).map_err(|e| e.to_string())?;
    let tensor = Quantized::new(&[q.scale], &[q.zero_point], tensor).map_err(|e| e.to_string())?;
    Ok(Input::Split { cut: cut.tensor.clone(), tensor })
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
        self.slowdown.run_blocking(|| self.make(request, form))
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
        (ManifestShaper::new(manifests, HashMap::new(), Slowdown::new(1.0)), request)
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

    /// The decision's targets with an edge offered `split@92` (and `split@7`, no cut of the
    /// model, in the second config).
    fn targets(forms: &str) -> Targets {
        let mut text = String::from(
            "[thermal]\nthrottle_point_c = 85.0\nset_point_c = 75.0\n\
             [[targets]]\nkind = \"local\"\nname = \"l\"\nmodel = \"efficientnet-lite0\"\nprecision = \"fp32\"\n",
        );
        text.push_str(&format!("[[targets]]\nkind = \"edge\"\nname = \"e\"\nforms = {forms}\n"));
        for name in forms.trim_matches(['[', ']']).split(',').map(|n| n.trim().trim_matches('"')) {
            text.push_str(&format!("[[forms]]\nmodel = \"efficientnet-lite0\"\nname = \"{name}\"\nup_bytes = 1400\nencode_ms = 80.0\nedge_share = 0.01\n"));
        }
        ferry_decide::Decider::new(&ferry_decide::Config::from_toml(&text).unwrap()).unwrap().targets().clone()
    }

    #[test]
    fn a_split_runs_the_head_and_sends_the_crossing_tensor() {
        let (plain, request) = shaper_and_request();
        let targets = targets(r#"["split@92"]"#);
        let cache = tempfile::tempdir().unwrap();
        let engine = ferry_runtime::TractEngine::new(ferry_runtime::Threads(1));
        let heads = load_heads(&engine, &plain.manifests, &targets, cache.path()).unwrap();
        assert_eq!(heads.len(), 1);
        let shaper = ManifestShaper::new(plain.manifests.clone(), heads, Slowdown::new(1.0));
        let split = shaper.shape(&request, "split@92").unwrap();
        assert_eq!((split.request_id, split.deadline_ms), (7, Some(500)));
        let Input::Split { cut, tensor } = &split.input else { panic!("not a split") };
        assert_eq!(cut, "/_avg_pooling/GlobalAveragePool_output_0");
        assert_eq!(tensor.as_ref().tensor.data().len(), 1280);
        assert_eq!(tensor.as_ref().params().count(), 1);
        // Its head, timed at start-up, seeds the form's making time.
        let seeded = measure_heads(&shaper, &targets);
        assert!(matches!(seeded.as_slice(), [Observation::Shaped { form: FormId(1), encode_us, .. }] if *encode_us > 0), "{seeded:?}");
        // Without a loaded head: a clear error.
        assert!(plain.shape(&request, "split@92").unwrap_err().contains("no head"));
        // A cut the model does not have: refused at start-up, listing the cuts.
        let e = load_heads(&engine, &plain.manifests, &self::targets(r#"["split@7"]"#), cache.path()).unwrap_err().to_string();
        assert!(e.contains("split@7") && e.contains("split@92"), "{e}");
    }
}
