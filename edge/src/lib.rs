//! `ferry-edge` owns the edge server: it takes inference requests that devices offload, runs
//! them with tract, and answers with the result and its own timings.
//!
//! # Layout
//!
//! - [`config`]: [`EdgeConfig`], the TOML file (`firmware-configs/edge.toml`).
//! - [`models`]: the variants served, loaded once at start (FP32 by default, per model).
//! - `server`: [`run`]: MQTT v5 over TLS 1.3 with a shared subscription
//!   (`$share/<group>/ferry/+/req/+`), request checks, immediate answers (busy, malformed).
//! - [`worker`]: the bounded queue and the worker threads, with dynamic batching that never
//!   waits for a batch to fill.
//! - [`stats`]: counters.
//!
//! Every request gets exactly one answer on `ferry/<device>/resp` where the device can be
//! identified (from the topic, which the broker's ACL ties to the certificate); what cannot
//! be attributed is logged and counted. Nothing a device sends stops the server.
#![deny(unsafe_code, missing_docs)]

pub mod config;
pub mod models;
mod server;
pub mod stats;
pub mod worker;

pub use config::EdgeConfig;
pub use server::run;
pub use stats::StatsSnapshot;

/// Why the edge server cannot start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The configuration is unusable.
    #[error("config: {0}")]
    Config(#[from] config::ConfigError),
    /// A model could not be loaded.
    #[error("models: {0}")]
    Models(#[from] ferry_runtime::RuntimeError),
    /// The configuration serves no model (and the model folder holds none).
    #[error("no model to serve: the config lists none and the model folder holds none")]
    NoModels,
    /// A worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Spawn(std::io::Error),
    /// A background task failed.
    #[error("background task: {0}")]
    Task(String),
}
