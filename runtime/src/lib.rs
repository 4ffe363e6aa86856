//! `ferry-runtime` owns local inference, for the agent on the device and for the edge server:
//! model manifests, turning images and tensors into model inputs, the [`Engine`] seam, and the
//! tract engine behind it (the default and, for now, the only one).
//!
//! # Layout
//! - [`manifest`]: the TOML beside each model (input, preprocessing, output, variants).
//! - [`store`]: the folder of models and where Ferry finds it.
//! - [`engine`]: the `Engine`/`Session` traits another engine would implement.
//! - [`tract_engine`]: tract-onnx, optimized once, with reused spawned states.
//! - [`quant`]: the integer rewrite that runs a QDQ model's quantized ops on integer kernels.
//! - [`model`]: a loaded variant: image or tensor in, top-k out.
//! - [`preprocess`]: bounded image decoding, resize, crop, normalise; tensor shape checks.
//! - [`forms`]: what a device may send instead of the original file (a shaped JPEG, the exact
//!   INT8 tensor), made with the same preprocessing.
//! - [`split`]: split inference: a model's cut points, its head and tail as ONNX files,
//!   the crossing tensor quantized.
//! - [`topk`]: softmax and top-k.
//! - [`eval`]: accuracy on a labelled image set (top-1/top-5, agreement, 95 % intervals) and its
//!   fixed calibration/evaluation split.
//! - [`error`]: the one error type, naming the file or model at fault.
//!
//! ```no_run
//! use ferry_runtime::{ModelStore, TractEngine, Threads, Precision, preprocess};
//! # fn main() -> Result<(), ferry_runtime::RuntimeError> {
//! let store = ModelStore::discover();
//! let model = store.load(&TractEngine::new(Threads(1)), "efficientnet-lite0", Precision::Int8)?;
//! let image = preprocess::load_image("models/images/cat.jpg".as_ref())?;
//! let answer = model.infer_image(&image, 5)?;
//! println!("{} ({:.2})", answer.top[0].label, answer.top[0].score);
//! # Ok(()) }
//! ```
#![deny(unsafe_code, missing_docs)]

pub mod engine;
pub mod error;
pub mod eval;
pub mod forms;
pub mod manifest;
pub mod model;
pub mod preprocess;
pub mod quant;
pub mod split;
pub mod store;
pub mod topk;
pub mod tract_engine;

pub use engine::{Cancel, Engine, Part, RawOutput, Session, Threads};
pub use error::RuntimeError;
pub use ferry_hal::Precision;
pub use manifest::Manifest;
pub use model::{Inference, LocalModel};
pub use store::ModelStore;
pub use topk::Class;
pub use tract_engine::TractEngine;
