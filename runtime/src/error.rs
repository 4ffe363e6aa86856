//! The runtime's one error type: every variant names the file or the model it is about and
//! what was expected, so that the CLI can print it as is.

use std::path::PathBuf;

use ferry_hal::Precision;

/// Everything that can go wrong between "a model name and an input" and "top-k".
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A manifest or labels file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A manifest is not valid TOML or does not fit the manifest schema.
    #[error("{path}: {message}")]
    ManifestSyntax {
        /// The manifest file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A manifest parses but a value is not acceptable.
    #[error("{path}: key `{key}`: expected {expected}")]
    ManifestValue {
        /// The manifest file.
        path: PathBuf,
        /// The key, as a dotted path.
        key: String,
        /// What was expected there.
        expected: String,
    },
    /// No model of that name in the model directory.
    #[error("unknown model `{name}`: no {dir}/{name}/manifest.toml (known: {known})")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The model directory searched.
        dir: PathBuf,
        /// The models that do exist, comma-separated.
        known: String,
    },
    /// The manifest lists no file for that precision.
    #[error("model `{model}` has no {precision} variant in its manifest")]
    NoVariant {
        /// The model.
        model: String,
        /// The precision asked for.
        precision: Precision,
    },
    /// The model file is missing, unreadable, or not a model tract can load.
    #[error("{path}: cannot load the model: {message}")]
    ModelFile {
        /// The ONNX file.
        path: PathBuf,
        /// tract's explanation.
        message: String,
    },
    /// The model file and its manifest disagree (input or output shape, label count).
    #[error("{path}: does not match its manifest: {message}")]
    ManifestMismatch {
        /// The ONNX file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// An image could not be read or decoded.
    #[error("{source_name}: cannot read the image: {message}")]
    Image {
        /// The image's file name, or a description of where the bytes came from.
        source_name: String,
        /// The decoder's explanation.
        message: String,
    },
    /// A raw tensor does not have the shape (or length) the model takes.
    #[error("model `{model}`: tensor of shape {got:?} with {len} values, expected shape {expected:?} ({expected_len} values)")]
    TensorShape {
        /// The model.
        model: String,
        /// The shape the manifest declares.
        expected: Vec<usize>,
        /// The number of values that shape holds.
        expected_len: usize,
        /// The shape given.
        got: Vec<usize>,
        /// The number of values given.
        len: usize,
    },
    /// The run was cancelled before it finished (see [`crate::Cancel`]).
    #[error("the inference was cancelled before it finished")]
    Cancelled,
    /// The engine failed while running the model.
    #[error("model `{model}` ({precision}): inference failed: {message}")]
    Inference {
        /// The model.
        model: String,
        /// Its precision.
        precision: Precision,
        /// The engine's explanation.
        message: String,
    },
    /// A model could not be cut, or a split request does not fit its cut.
    #[error("split inference: {message}")]
    Split {
        /// What is wrong.
        message: String,
    },
    /// A labelled evaluation set is missing, unreadable or malformed.
    #[error("{path}: {message}")]
    Dataset {
        /// The set's folder or its `labels.csv`.
        path: PathBuf,
        /// What is wrong, with the line where there is one.
        message: String,
    },
}
