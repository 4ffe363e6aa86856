//! The two kinds of path a request can take, as the executor sees them.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::decide::TargetId;
use crate::protocol::{Request, Response};
use crate::transport::mqtt::{MqttOffloader, OffloadError};

/// What a local run produced.
#[derive(Debug, Clone)]
pub struct LocalResult {
    /// The answer, shaped like an edge's (status, top-k).
    pub response: Response,
    /// Time spent waiting for the local engine, µs.
    pub queued_us: u32,
    /// Time spent computing, µs.
    pub compute_us: u32,
}

/// Runs requests on this board (one of its local variants).
pub trait LocalRunner: Send + Sync + 'static {
    /// Runs `request` on the local variant `target`. Implementations move blocking compute off
    /// the async threads. An `Err` is a failed run, with the reason.
    ///
    /// `cancel` is set when the request no longer needs this run (the edge answered first):
    /// an implementation should stop as soon as it can and return an `Err`, so that the board
    /// is free for the next request. One that cannot stop simply finishes; its result is dropped.
    fn run(
        &self,
        target: TargetId,
        request: Arc<Request>,
        cancel: Arc<AtomicBool>,
    ) -> impl Future<Output = Result<LocalResult, String>> + Send;
}

/// Carries requests to one edge endpoint.
pub trait EdgeLink: Send + Sync + 'static {
    /// Sends `request` and waits at most `timeout` for its response.
    fn offload(&self, request: Request, timeout: Duration) -> impl Future<Output = Result<Response, OffloadError>> + Send;
}

impl EdgeLink for MqttOffloader {
    fn offload(&self, request: Request, timeout: Duration) -> impl Future<Output = Result<Response, OffloadError>> + Send {
        MqttOffloader::offload(self, request, timeout)
    }
}
