//! The local API for applications on the device: HTTP on 127.0.0.1 and/or a Unix socket.
//!
//! - `POST /v1/infer/{model}`: body = a PNG/JPEG image (`Content-Type: image/png|image/jpeg`)
//!   or a raw tensor (`application/octet-stream`, little-endian f32, `?shape=1,1,8,8`);
//!   optional `?deadline_ms=`, `placement=any|local-only|edge-only`, `mode=latency|energy`,
//!   `best_effort=`, `stream=<id>&freshest=`; answer: JSON with top-k, where it ran, latency,
//!   the reason, its `status` (`ok`, `deadline_exceeded` 504, `busy` 503, `superseded` 409)
//!   and the constraints that applied. A client that disconnects cancels its request. An input
//!   the model cannot take (an image that does not decode, a tensor of the wrong shape) is
//!   answered 400 before it is decided on. Every error has a JSON body `{"error": ...}`.
//! - `GET /v1/status`: health, link, estimators, counters, latest sensor readings (JSON).
//! - `GET /v1/metrics`: the same counters in Prometheus text format.
//!
//! # Layout
//! - [`infer`]: the inference endpoint and its input parsing.
//! - [`status`]: status (JSON) and metrics (Prometheus).
//! - [`errors`]: every error answered with a JSON body, axum's own included.
//! - [`serve`]: binding and serving both socket kinds until shutdown.

pub mod errors;
pub mod infer;
pub mod serve;
pub mod status;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::daemon::Daemon;

/// The API's routes over `daemon`.
pub fn router(daemon: Arc<Daemon>) -> Router {
    let limit = daemon.config.api.max_body_bytes;
    Router::new()
        .route("/v1/infer/{model}", post(infer::infer))
        .route("/v1/status", get(status::status))
        .route("/v1/metrics", get(status::metrics))
        .fallback(errors::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(errors::json_errors))
        .with_state(daemon)
}
