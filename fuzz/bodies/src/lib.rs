//! `ferry-fuzz-bodies`: the body of every Ferry fuzz target, one function each, written once
//! and called from two places: the cargo-fuzz targets in `fuzz/fuzz_targets/` (nightly,
//! libFuzzer, outside the workspace) and `tests/replay.rs` here, which runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the same function on
//! stable in the workspace's test run. A body panics exactly when it finds a defect: a panic
//! inside the code under test, or a property below that does not hold.
//!
//! # Layout
//!
//! - [`envelope`]: the bytes a device or an edge receives over MQTT: request and response
//!   envelopes (`ferry-protocol`), the edge's answer to an undecodable request, the tensor
//!   check an edge applies, the topic a message came on.
//! - [`image`]: preprocessing an untrusted image (decode, resize, crop, normalise) for the
//!   shipped models, with its memory bounded and asserted.
//! - [`config`]: the TOML loaders: agent config, board config, edge config, model manifest.
//! - [`spool`]: opening a telemetry spool directory holding arbitrary segment, ack and
//!   reservation files, then reading, appending, acknowledging and reopening it.
//! - [`meter`]: a counting allocator, so that a body can assert how much memory a call asked for.
//! - [`models`]: the shipped model manifests the bodies preprocess for.

pub mod config;
pub mod envelope;
pub mod image;
pub mod meter;
pub mod models;
pub mod spool;

/// The targets, by the name of their corpus folder (`fuzz/corpus/<name>`) and their body.
pub const TARGETS: [(&str, fn(&[u8])); 4] = [
    ("envelope", envelope::run),
    ("image", image::run),
    ("config", config::run),
    ("spool", spool::run),
];
