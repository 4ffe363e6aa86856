//! Split inference: the device runs the first part of a model (the *head*), sends the one
//! tensor that carries all the state at that point, quantized to bytes, and the edge runs the
//! rest (the *tail*).
//!
//! Cuts are made on the ONNX graph of the model's FP32 variant ([`graph`]); each half is an
//! ordinary ONNX file, written once into a cache folder under the model file's fingerprint and
//! loaded like any model ([`crate::Engine::load_part`]). Device and edge find the same cuts in
//! the same file, and a split request names its cut by the crossing tensor, which the edge
//! checks against its own list.
//!
//! # Layout
//! - [`graph`]: cut points and the two halves, on the protobuf.
//! - [`activation`]: the crossing tensor quantized to bytes with its scale, and back.
//! - this module: [`Splitter`] (a model's candidate cuts with their shapes, and its halves in
//!   the cache), [`Head`] and [`Tail`] (a loaded half, run).

pub mod activation;
pub mod graph;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferry_hal::Precision;
use image::DynamicImage;
use prost::Message;
use tract_onnx::pb::{tensor_shape_proto, type_proto, ModelProto, TensorShapeProto, TypeProto, ValueInfoProto};
use tract_onnx::prelude::*;

use crate::engine::{Cancel, Engine, Part, Session};
use crate::error::RuntimeError;
use crate::manifest::Manifest;
use crate::model::{finish, Inference};
use crate::preprocess::image_to_tensor;

/// The environment variable naming the folder halves are cached in (see [`cache_dir`]).
pub const CACHE_ENV: &str = "FERRY_CACHE_DIR";

/// Where halves are cached when the caller names no folder: `$FERRY_CACHE_DIR`, else
/// systemd's `$CACHE_DIRECTORY` (`CacheDirectory=` in the unit), else
/// `$XDG_CACHE_HOME/ferry`, else `~/.cache/ferry`, else `<tmp>/ferry-cache`.
pub fn cache_dir() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var(CACHE_ENV)
        .or_else(|| var("CACHE_DIRECTORY"))
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("ferry")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/ferry")))
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-cache"))
}

/// A candidate cut of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Nodes of the graph before the cut: the cut's number in `split@N`.
    pub nodes: usize,
    /// The crossing tensor's name in the graph.
    pub tensor: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

impl Cut {
    /// `split@N`.
    pub fn name(&self) -> String {
        format!("split@{}", self.nodes)
    }

    /// Values in the crossing tensor: the bytes a split request carries, quantized.
    pub fn values(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One half of a cut model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// The model's input in, the crossing tensor out: run on the device.
    Head,
    /// The crossing tensor in, the model's output out: run on the edge.
    Tail,
}

impl Half {
    fn as_str(self) -> &'static str {
        match self {
            Half::Head => "head",
            Half::Tail => "tail",
        }
    }
}

/// A model's cuts: the cut points of its FP32 graph where the crossing tensor is smaller than
/// the model's input and than every earlier candidate's (a later cut costs more on the
/// device, so it is a candidate only if it sends less).
pub struct Splitter {
    manifest: Arc<Manifest>,
    proto: ModelProto,
    fingerprint: String,
    cuts: Vec<Cut>,
}

impl std::fmt::Debug for Splitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splitter").field("model", &self.manifest.name).field("cuts", &self.cuts).finish()
    }
}

fn split_err(message: impl Into<String>) -> RuntimeError {
    RuntimeError::Split { message: message.into() }
}

impl Splitter {
    /// Reads the model's FP32 file and finds its candidate cuts.
    pub fn open(manifest: Arc<Manifest>) -> Result<Splitter, RuntimeError> {
        let path = manifest.model_path(Precision::Fp32)?;
        let file_err = |message: String| RuntimeError::ModelFile { path: path.clone(), message };
        let bytes = std::fs::read(&path).map_err(|e| file_err(e.to_string()))?;
        let fingerprint = format!("{:08x}-{}", crc32fast::hash(&bytes), bytes.len());
        let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| file_err(format!("not an ONNX model: {e}")))?;
        drop(bytes);
        let graph = proto.graph.as_ref().ok_or_else(|| file_err("the model has no graph".into()))?;
        let points = graph::cut_points(graph).map_err(|e| split_err(format!("model `{}`: {}", manifest.name, e.0)))?;
        let shapes = tensor_shapes(&proto, &manifest, points.iter().map(|p| p.tensor.as_str()))
            .map_err(|e| file_err(format!("shape analysis: {e:#}")))?;
        let mut smallest = manifest.input_len();
        let mut cuts = Vec::new();
        for (point, shape) in points.into_iter().zip(shapes) {
            let Some(shape) = shape else { continue };
            let values: usize = shape.iter().product();
            if values < smallest {
                smallest = values;
                cuts.push(Cut { nodes: point.nodes, tensor: point.tensor, shape });
            }
        }
        Ok(Splitter { manifest, proto, fingerprint, cuts })
    }

    /// The model.
    pub fn manifest(&self) -> &Arc<Manifest> {
        &self.manifest
    }

    /// The candidate cuts, head smallest first.
    pub fn cuts(&self) -> &[Cut] {
        &self.cuts
    }

    /// The candidate cut whose crossing tensor is `tensor`.
    pub fn by_tensor(&self, tensor: &str) -> Option<&Cut> {
        self.cuts.iter().find(|c| c.tensor == tensor)
    }

    /// The candidate cut named `split@N`.
    pub fn by_name(&self, name: &str) -> Option<&Cut> {
        self.cuts.iter().find(|c| c.name() == name)
    }

    /// The ONNX file of one half of `cut`, from the cache folder `cache` (written there the
    /// first time, atomically, under the model file's fingerprint).
    pub fn half(&self, cut: &Cut, which: Half, cache: &Path) -> Result<PathBuf, RuntimeError> {
        let dir = cache.join("split").join(format!("{}-{}", self.manifest.name, self.fingerprint));
        let path = dir.join(format!("{}.{}.onnx", cut.nodes, which.as_str()));
        if path.is_file() {
            return Ok(path);
        }
        let graph = self.proto.graph.as_ref().ok_or_else(|| split_err(format!("model `{}`: the model has no graph", self.manifest.name)))?;
        let point = graph::CutPoint { nodes: cut.nodes, tensor: cut.tensor.clone() };
        let typed = value_info(&cut.tensor, &cut.shape);
        let half = match which {
            Half::Head => graph::head(graph, &point, typed),
            Half::Tail => graph::tail(graph, &point, typed),
        };
        let model = ModelProto { graph: Some(half), ..header(&self.proto) };
        std::fs::create_dir_all(&dir).map_err(|e| split_err(format!("{}: cannot create the cache: {e}", dir.display())))?;
        write_atomically(&path, &model.encode_to_vec())?;
        Ok(path)
    }

    /// Loads the head of `cut` with `engine`.
    pub fn load_head(&self, engine: &dyn Engine, cut: &Cut, cache: &Path) -> Result<Head, RuntimeError> {
        let part = Part {
            path: self.half(cut, Half::Head, cache)?,
            input_shape: self.manifest.input.shape.clone(),
            output_len: cut.values(),
            label: format!("{} {} head", self.manifest.name, cut.name()),
        };
        Ok(Head { manifest: self.manifest.clone(), cut: cut.clone(), session: engine.load_part(&part)? })
    }

    /// Loads the tail of `cut` with `engine`.
    pub fn load_tail(&self, engine: &dyn Engine, cut: &Cut, cache: &Path) -> Result<Tail, RuntimeError> {
        let part = Part {
            path: self.half(cut, Half::Tail, cache)?,
            input_shape: cut.shape.clone(),
            output_len: self.manifest.output.classes,
            label: format!("{} {} tail", self.manifest.name, cut.name()),
        };
        let labels = self.manifest.read_labels()?;
        Ok(Tail { manifest: self.manifest.clone(), cut: cut.clone(), labels, session: engine.load_part(&part)? })
    }
}

/// Everything of `proto` but its graph and training info (IR version, opsets, producer,
/// metadata, local functions).
fn header(proto: &ModelProto) -> ModelProto {
    ModelProto {
        ir_version: proto.ir_version,
        opset_import: proto.opset_import.clone(),
        producer_name: proto.producer_name.clone(),
        producer_version: proto.producer_version.clone(),
        domain: proto.domain.clone(),
        model_version: proto.model_version,
        doc_string: proto.doc_string.clone(),
        metadata_props: proto.metadata_props.clone(),
        functions: proto.functions.clone(),
        training_info: Vec::new(),
        graph: None,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let err = |e: std::io::Error| split_err(format!("{}: cannot write: {e}", path.display()));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// An FP32 tensor's type, for a half's new input or output.
fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor { elem_type: 1, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

/// The concrete shape of each named tensor, from tract's analysis of the whole model at the
/// manifest's input shape (`None` where tract's typed graph has no such tensor).
fn tensor_shapes<'a>(proto: &ModelProto, manifest: &Manifest, names: impl Iterator<Item = &'a str>) -> TractResult<Vec<Option<Vec<usize>>>> {
    let model = tract_onnx::onnx()
        .model_for_proto_model(proto)?
        .with_input_fact(0, f32::fact(manifest.input.shape.clone()).into())?
        .into_typed()?;
    Ok(names
        .map(|name| {
            let outlet = model.find_outlet_label(name)?;
            model.outlet_fact(outlet).ok()?.shape.as_concrete().map(<[usize]>::to_vec)
        })
        .collect())
}

/// A loaded head: an image (or its tensor) in, the crossing tensor out, quantized.
pub struct Head {
    manifest: Arc<Manifest>,
    cut: Cut,
    session: Box<dyn Session>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head").field("model", &self.manifest.name).field("cut", &self.cut).finish()
    }
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").field("model", &self.manifest.name).field("cut", &self.cut).finish()
    }
}

impl Head {
    /// The cut.
    pub fn cut(&self) -> &Cut {
        &self.cut
    }

    /// Runs the head on a decoded image: the quantized crossing tensor and the head's compute
    /// time. Stops with [`RuntimeError::Cancelled`] once `cancel` is set.
    pub fn run_image(&self, image: &DynamicImage, cancel: &Cancel) -> Result<(activation::Quantized, Duration), RuntimeError> {
        cancel.check()?;
        let input = image_to_tensor(&self.manifest, image);
        self.run_tensor(&input, cancel)
    }

    /// Runs the head on the model's input tensor.
    pub fn run_tensor(&self, input: &[f32], cancel: &Cancel) -> Result<(activation::Quantized, Duration), RuntimeError> {
        let out = self.session.run_cancellable(input, cancel)?;
        Ok((activation::quantize(&out.scores)?, out.compute))
    }
}

/// A loaded tail: the quantized crossing tensor in, the model's answer out.
pub struct Tail {
    manifest: Arc<Manifest>,
    cut: Cut,
    labels: Vec<String>,
    session: Box<dyn Session>,
}

impl Tail {
    /// The cut.
    pub fn cut(&self) -> &Cut {
        &self.cut
    }

    /// Runs the tail on a quantized crossing tensor of the cut's shape; top `k` classes.
    pub fn infer(&self, shape: &[usize], scale: f32, zero_point: i32, values: &[u8], k: usize) -> Result<Inference, RuntimeError> {
        self.check(shape, scale, zero_point, values.len())?;
        let x = activation::dequantize(scale, zero_point, values);
        let out = self.session.run_batch(&[&x])?.pop().ok_or_else(|| split_err("the tail returned no result"))?;
        Ok(finish(&self.manifest, &self.labels, out.scores, out.compute, k))
    }

    /// Whether a quantized crossing tensor of `shape` with `len` values, `scale` and
    /// `zero_point` fits this tail (what [`Self::infer`] checks first; the edge checks it on
    /// receipt, to refuse a bad request as the client's error).
    pub fn check(&self, shape: &[usize], scale: f32, zero_point: i32, len: usize) -> Result<(), RuntimeError> {
        if shape != self.cut.shape.as_slice() || len != self.cut.values() {
            return Err(split_err(format!(
                "{} of `{}` takes a tensor of shape {:?} ({} values), got shape {shape:?} with {} values",
                self.cut.name(),
                self.manifest.name,
                self.cut.shape,
                self.cut.values(),
                len
            )));
        }
        if !(scale.is_finite() && scale > 0.0) || !(0..=255).contains(&zero_point) {
            return Err(split_err(format!("scale {scale} and zero point {zero_point}: expected a finite positive scale and a zero point in 0..=255")));
        }
        Ok(())
    }
}
