//! `ferry-edge` owns the edge server: it takes inference requests that devices offload, runs
//! them with tract, and answers with the result and its own timings.
//!
//! # Layout
//!
//! - [`config`]: [`EdgeConfig`], the TOML file (`firmware-configs/edge.toml`).
//! - [`models`]: the variants served, loaded once at start (FP32 by default, per model).
//! - `server`: [`run`]: MQTT v5 over TLS 1.3 with a shared subscription
//!   (`$share/<group>/ferry/+/req/+`), the publisher, and the stop that answers everything
//!   queued and in flight before disconnecting.
//! - `handler`: one received message: checks, immediate answers (busy, malformed, probe),
//!   or a job for the queue.
//! - [`queue`]: the bounded request queue, one FIFO per device served in turn, each device
//!   guaranteed its share.
//! - [`worker`]: the worker threads, with dynamic batching that never waits for a batch to
//!   fill, and deadline expiry on the edge's clock.
//! - [`answers`]: the bounded channel of answers to publish (workers wait for room; the
//!   event loop never waits, and counts what finds none).
//! - [`clock`]: budgets counted from receipt; the devices' clock skew, reported only.
//! - [`stats`]: counters, and the rate limit for repeated warnings.
//!
//! Every request gets exactly one answer on `ferry/<device>/resp` where the device can be
//! identified (from the topic, which the broker's ACL ties to the certificate); what cannot
//! be attributed is logged and counted. Nothing a device sends stops the server.
#![deny(unsafe_code, missing_docs)]

pub mod answers;
pub mod clock;
pub mod config;
mod handler;
pub mod models;
pub mod queue;
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
