//! The model manifest: the TOML beside each model that says what the model takes, how to
//! prepare an image for it, what its outputs mean, and which file holds each precision.
//!
//! The struct is the documentation: every field is commented, unknown keys are refused.

use std::path::{Path, PathBuf};

use ferry_hal::Precision;
use serde::Deserialize;

use crate::error::RuntimeError;
use crate::preprocess::MAX_IMAGE_SIDE;

/// A model manifest (`models/<name>/manifest.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The model's name, as requests name it; must equal its folder's name.
    pub name: String,
    /// One line on what the model does.
    #[serde(default)]
    pub description: String,
    /// The labels file (one label per line, in class order), relative to the manifest.
    pub labels: PathBuf,
    /// Where the model and its weights come from.
    pub source: String,
    /// The licence of the weights.
    pub licence: String,
    /// What the model takes.
    pub input: InputSpec,
    /// How an image becomes the input tensor.
    pub preprocess: Preprocess,
    /// What the model returns.
    pub output: OutputSpec,
    /// The accuracy a variant must keep to be used in place of the reference (FP32).
    #[serde(default)]
    pub accuracy: AccuracyRequirement,
    /// One entry per precision the model ships in.
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
    /// What `ferry eval` measured on the labelled evaluation split, if it was run.
    #[serde(default)]
    pub evaluation: Option<Evaluation>,
    /// The folder the manifest was read from (set by [`Manifest::load`]).
    #[serde(skip)]
    pub dir: PathBuf,
    /// The manifest file itself (set by [`Manifest::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

/// The model's single input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The input's name in the ONNX graph.
    pub name: String,
    /// Its shape, batch first: `[1, C, H, W]`.
    pub shape: Vec<usize>,
    /// Its layout; only `nchw` is supported.
    #[serde(default = "default_layout")]
    pub layout: String,
}

fn default_layout() -> String {
    "nchw".to_string()
}

/// Colour handling before normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// Three channels, red first.
    Rgb,
    /// One luminance channel.
    Gray,
}

/// Image preprocessing: resize the shorter side, centre-crop to the input's H×W, then
/// `(pixel - mean[c]) / std[c]` with pixels in 0..=255.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// `rgb` or `gray`; must agree with the input's channel count.
    pub color: Color,
    /// The length the shorter side is resized to before the crop (bilinear).
    pub resize_shorter: u32,
    /// Per-channel mean, in pixel units (0..=255).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, in pixel units; every entry > 0.
    pub std: Vec<f32>,
}

/// What the model's first output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scores {
    /// Unnormalised scores: the runtime applies a softmax.
    Logits,
    /// Already probabilities.
    Probabilities,
}

/// The model's output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The output's name in the ONNX graph.
    pub name: String,
    /// Logits or probabilities.
    pub scores: Scores,
    /// The number of classes; the labels file must have exactly this many lines.
    pub classes: usize,
}

/// How much accuracy a cheaper variant may give up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccuracyRequirement {
    /// The metric the figures below are in (e.g. "held-out top-1 %").
    #[serde(default = "default_metric")]
    pub metric: String,
    /// The largest drop (in the metric's points) against the FP32 variant a variant may have
    /// and still be used.
    #[serde(default = "default_max_drop")]
    pub max_drop: f32,
    /// The largest drop of real top-1 (points, against the labels of `[evaluation]`) a shaped
    /// input form may have against the original input and still be sent. Default 1.
    #[serde(default = "default_max_drop")]
    pub max_top1_drop: f32,
}

/// `[evaluation]`: figures `ferry eval` measured on labelled images the model never saw.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The images and the split (e.g. the evaluation split of imagenet-val-650, its seed).
    pub data: String,
    /// The command that measured the figures.
    pub command: String,
    /// Images measured.
    pub images: u32,
    /// Top-1 against the labels of the FP32 variant on the original input, %.
    pub top1: f32,
    /// Its 95 % interval (Wilson), %.
    pub top1_interval: [f32; 2],
    /// `[[evaluation.form]]`: per shaped input form.
    #[serde(default, rename = "form")]
    pub forms: Vec<FormFigures>,
    /// `[[evaluation.cut]]`: per candidate cut of split inference.
    #[serde(default, rename = "cut")]
    pub cuts: Vec<CutFigures>,
}

/// `[[evaluation.cut]]`: split inference at one cut, FP32 halves, the crossing tensor as u8.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutFigures {
    /// Its name, `split@N` ([`crate::split::Cut::name`]).
    pub cut: String,
    /// The crossing tensor's name in the graph.
    pub tensor: String,
    /// Payload bytes (one per value).
    pub bytes: u32,
    /// Making it from the original on the measuring machine (decode, preprocess, head,
    /// quantize), ms.
    pub make_ms: f64,
    /// The head's compute alone, ms.
    pub head_ms: f64,
    /// The tail's compute, ms.
    pub tail_ms: f64,
    /// Top-1 against the labels, %.
    pub top1: f32,
    /// Its 95 % interval (Wilson), %.
    pub top1_interval: [f32; 2],
    /// Top-1 agreement with the whole model, %.
    pub agreement: f32,
    /// Top-1 agreement where the whole model is confident (p >= 0.5), %.
    pub confident_agreement: f32,
}

/// `[[evaluation.form]]`: one shaped input form, FP32 model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormFigures {
    /// Its name (`jpeg85`, `int8-tensor`; see [`crate::forms::Form`]).
    pub form: String,
    /// Mean payload bytes per image.
    pub mean_bytes: u32,
    /// Mean time to make it from the original on the measuring machine, ms.
    pub make_ms: f64,
    /// Top-1 against the labels, %.
    pub top1: f32,
    /// Its 95 % interval (Wilson), %.
    pub top1_interval: [f32; 2],
    /// Top-1 agreement with the answer on the original input, %.
    pub agreement: f32,
}

impl Evaluation {
    /// The figures of one form.
    pub fn form(&self, name: &str) -> Option<&FormFigures> {
        self.forms.iter().find(|f| f.form == name)
    }

    /// The figures of one cut (`split@N`).
    pub fn cut(&self, name: &str) -> Option<&CutFigures> {
        self.cuts.iter().find(|c| c.cut == name)
    }
}

fn default_metric() -> String {
    "top-1 %".to_string()
}

fn default_max_drop() -> f32 {
    1.0
}

impl Default for AccuracyRequirement {
    fn default() -> Self {
        Self { metric: default_metric(), max_drop: default_max_drop(), max_top1_drop: default_max_drop() }
    }
}

/// One precision of the model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// `fp32` or `int8`.
    pub precision: Precision,
    /// The ONNX file, relative to the manifest.
    pub file: PathBuf,
    /// Its accuracy as measured by `models/make.py`, in the metric of `[accuracy]`.
    #[serde(default)]
    pub accuracy: Option<f32>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, RuntimeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RuntimeError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and validates manifest text; `path` is where it came from (for errors and for
    /// resolving the files it names).
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, RuntimeError> {
        let mut manifest: Manifest = toml::from_str(text).map_err(|e| RuntimeError::ManifestSyntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        manifest.path = path.to_path_buf();
        manifest.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        manifest.validate()?;
        Ok(manifest)
    }

    fn invalid(&self, key: &str, expected: impl Into<String>) -> RuntimeError {
        RuntimeError::ManifestValue { path: self.path.clone(), key: key.to_string(), expected: expected.into() }
    }

    fn validate(&self) -> Result<(), RuntimeError> {
        let shape = &self.input.shape;
        if self.input.layout != "nchw" {
            return Err(self.invalid("input.layout", "\"nchw\" (the only layout supported)"));
        }
        if shape.len() != 4 || shape.iter().any(|&d| d == 0) || shape[0] != 1 {
            return Err(self.invalid("input.shape", "[1, C, H, W] with C, H, W > 0"));
        }
        // Preprocessing is bounded for sides up to the largest image accepted; beyond, the
        // input's size need not even fit in a usize (and `as u32` below would wrap).
        let max_side = MAX_IMAGE_SIDE as usize;
        if shape[2] > max_side || shape[3] > max_side {
            return Err(self.invalid("input.shape", format!("H and W at most {MAX_IMAGE_SIDE}")));
        }
        if self.preprocess.resize_shorter > MAX_IMAGE_SIDE {
            return Err(self.invalid("preprocess.resize_shorter", format!("at most {MAX_IMAGE_SIDE}, the largest image side")));
        }
        let channels = shape[1];
        let wanted = match self.preprocess.color {
            Color::Rgb => 3,
            Color::Gray => 1,
        };
        if channels != wanted {
            return Err(self.invalid("preprocess.color", format!("a colour mode with {channels} channel(s), as input.shape says")));
        }
        if self.preprocess.mean.len() != channels {
            return Err(self.invalid("preprocess.mean", format!("{channels} value(s), one per channel")));
        }
        if self.preprocess.std.len() != channels || self.preprocess.std.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
            return Err(self.invalid("preprocess.std", format!("{channels} finite value(s) > 0, one per channel")));
        }
        let min_side = shape[2].max(shape[3]) as u32;
        if self.preprocess.resize_shorter < min_side {
            return Err(self.invalid("preprocess.resize_shorter", format!("at least {min_side}, the crop's larger side")));
        }
        if self.output.classes == 0 {
            return Err(self.invalid("output.classes", "a class count > 0"));
        }
        if self.variants.is_empty() {
            return Err(self.invalid("variant", "at least one [[variant]]"));
        }
        for (i, v) in self.variants.iter().enumerate() {
            if self.variants[..i].iter().any(|w| w.precision == v.precision) {
                return Err(self.invalid(&format!("variant[{i}].precision"), "each precision at most once"));
            }
        }
        if let Some(e) = &self.evaluation {
            let percent = |x: f32| x.is_finite() && (0.0..=100.0).contains(&x);
            let interval = |i: [f32; 2], x: f32| percent(i[0]) && percent(i[1]) && i[0] <= x && x <= i[1];
            if !percent(e.top1) || !interval(e.top1_interval, e.top1) {
                return Err(self.invalid("evaluation.top1", "a percentage inside its top1_interval [low, high]"));
            }
            for (i, f) in e.forms.iter().enumerate() {
                let key = |k: &str| format!("evaluation.form[{i}].{k}");
                match f.form.parse::<crate::forms::Form>() {
                    Ok(crate::forms::Form::Original) => return Err(self.invalid(&key("form"), "a shaped form (the original's figures are [evaluation] top1)")),
                    Ok(_) => {}
                    Err(why) => return Err(self.invalid(&key("form"), why)),
                }
                if e.forms[..i].iter().any(|g| g.form == f.form) {
                    return Err(self.invalid(&key("form"), "each form at most once"));
                }
                if !percent(f.top1) || !interval(f.top1_interval, f.top1) {
                    return Err(self.invalid(&key("top1"), "a percentage inside its top1_interval [low, high]"));
                }
                if !percent(f.agreement) {
                    return Err(self.invalid(&key("agreement"), "a percentage"));
                }
                if !(f.make_ms.is_finite() && (0.0..=600_000.0).contains(&f.make_ms)) {
                    return Err(self.invalid(&key("make_ms"), "milliseconds in 0..=600000"));
                }
                if f.mean_bytes == 0 || f.mean_bytes > 4 << 20 {
                    return Err(self.invalid(&key("mean_bytes"), "bytes in 1..=4194304"));
                }
            }
        }
        if let Some(folder) = self.dir.file_name().and_then(|f| f.to_str()) {
            if !self.dir.as_os_str().is_empty() && folder != self.name {
                return Err(self.invalid("name", format!("the folder's name, `{folder}`")));
            }
        }
        Ok(())
    }

    /// The variant of this precision, if the model ships one.
    pub fn variant(&self, precision: Precision) -> Result<&Variant, RuntimeError> {
        self.variants
            .iter()
            .find(|v| v.precision == precision)
            .ok_or(RuntimeError::NoVariant { model: self.name.clone(), precision })
    }

    /// The ONNX file of this precision.
    pub fn model_path(&self, precision: Precision) -> Result<PathBuf, RuntimeError> {
        Ok(self.dir.join(&self.variant(precision)?.file))
    }

    /// The number of values the input tensor holds.
    pub fn input_len(&self) -> usize {
        self.input.shape.iter().product()
    }

    /// Reads the labels file; it must hold exactly `output.classes` lines.
    pub fn read_labels(&self) -> Result<Vec<String>, RuntimeError> {
        let path = self.dir.join(&self.labels);
        let text = std::fs::read_to_string(&path).map_err(|source| RuntimeError::Read { path: path.clone(), source })?;
        let labels: Vec<String> = text.lines().map(str::to_string).collect();
        if labels.len() != self.output.classes {
            return Err(RuntimeError::ManifestValue {
                path,
                key: "labels".to_string(),
                expected: format!("{} lines (output.classes), found {}", self.output.classes, labels.len()),
            });
        }
        Ok(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "m"
labels = "labels.txt"
source = "test"
licence = "test"
[input]
name = "input"
shape = [1, 3, 4, 4]
[preprocess]
color = "rgb"
resize_shorter = 4
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]
[output]
name = "logits"
scores = "logits"
classes = 2
[[variant]]
precision = "fp32"
file = "m.onnx"
"#;

    fn parse(text: &str) -> Result<Manifest, RuntimeError> {
        Manifest::parse(text, Path::new("models/m/manifest.toml"))
    }

    #[test]
    fn a_good_manifest_parses_and_resolves_its_files() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.input_len(), 48);
        assert_eq!(m.model_path(Precision::Fp32).unwrap(), Path::new("models/m/m.onnx"));
        assert!(matches!(m.variant(Precision::Int8), Err(RuntimeError::NoVariant { .. })));
    }

    const EVALUATION: &str = r#"
[evaluation]
data = "test"
command = "ferry eval"
images = 10
top1 = 80.0
top1_interval = [70.0, 90.0]
[[evaluation.form]]
form = "jpeg85"
mean_bytes = 1000
make_ms = 2.0
top1 = 78.0
top1_interval = [68.0, 88.0]
agreement = 95.0
"#;

    #[test]
    fn evaluation_figures_parse_and_bad_ones_name_their_key() {
        let m = parse(&format!("{GOOD}{EVALUATION}")).unwrap();
        let e = m.evaluation.as_ref().unwrap();
        assert_eq!(e.form("jpeg85").unwrap().mean_bytes, 1000);
        assert!(e.form("jpeg95").is_none());
        for (from, to, key) in [
            ("form = \"jpeg85\"", "form = \"png\"", "evaluation.form[0].form"),
            ("form = \"jpeg85\"", "form = \"original\"", "evaluation.form[0].form"),
            ("top1 = 78.0", "top1 = 99.0", "evaluation.form[0].top1"),
            ("top1 = 80.0", "top1 = 101.0", "evaluation.top1"),
            ("agreement = 95.0", "agreement = -1.0", "evaluation.form[0].agreement"),
            ("mean_bytes = 1000", "mean_bytes = 0", "evaluation.form[0].mean_bytes"),
            ("make_ms = 2.0", "make_ms = -2.0", "evaluation.form[0].make_ms"),
        ] {
            let err = parse(&format!("{GOOD}{}", EVALUATION.replace(from, to))).unwrap_err().to_string();
            assert!(err.contains(key), "{to}: {err}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let err = parse(&GOOD.replace("[input]", "colour = 1\n[input]")).unwrap_err().to_string();
        assert!(err.contains("models/m/manifest.toml") && err.contains("colour"), "{err}");
    }

    #[test]
    fn a_channel_mismatch_names_the_key_and_what_was_expected() {
        let err = parse(&GOOD.replace("color = \"rgb\"", "color = \"gray\"")).unwrap_err().to_string();
        assert!(err.contains("preprocess.color") && err.contains("3 channel"), "{err}");
        let err = parse(&GOOD.replace("std = [1.0, 1.0, 1.0]", "std = [1.0, 0.0, 1.0]")).unwrap_err().to_string();
        assert!(err.contains("preprocess.std"), "{err}");
    }

    /// Found with the `config` fuzz body (fuzz/regressions/config/manifest-shape-without-a-size.toml):
    /// a shape of 2^63-1 a side was accepted (its element count overflows `input_len`) with a
    /// resize side whose preprocessing bound overflows too.
    #[test]
    fn an_input_side_or_resize_side_beyond_the_largest_image_is_refused() {
        let huge = "shape = [1, 3, 9223372036854775807, 9223372036854775807]";
        let err = parse(&GOOD.replace("shape = [1, 3, 4, 4]", huge).replace("resize_shorter = 4", "resize_shorter = 4294967295"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("input.shape") && err.contains("8192"), "{err}");
        let err = parse(&GOOD.replace("resize_shorter = 4", "resize_shorter = 8193")).unwrap_err().to_string();
        assert!(err.contains("preprocess.resize_shorter") && err.contains("8192"), "{err}");
        assert!(parse(&GOOD.replace("resize_shorter = 4", "resize_shorter = 8192")).is_ok());
    }

    #[test]
    fn a_name_that_differs_from_its_folder_is_refused() {
        let err = Manifest::parse(GOOD, Path::new("models/other/manifest.toml")).unwrap_err().to_string();
        assert!(err.contains("key `name`") && err.contains("`other`"), "{err}");
    }
}
