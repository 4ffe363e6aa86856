//! The local path, as the executor sees it, and the shaping of an input before an offload;
//! the edge path is [`ferry_transport::EdgeLink`].

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ferry_decide::TargetId;
use ferry_protocol::{Request, Response};

/// What a local run produced.
#[derive(Debug, Clone)]
pub struct LocalResult {
    /// The answer, shaped like an edge's (status, top-k). The executor fills in its queue
    /// wait (`timings.queue_wait_us`): the wait in its local gate, the one local queue.
    pub response: Response,
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

/// Makes a request's original image input into a shaped form before an offload (the agent
/// implements it with the model's manifest). Called on a blocking thread.
pub trait Shaper: Send + Sync + 'static {
    /// `request` with its input made into the form named `form` (a name of the decider's
    /// `[[forms]]` for `request.model`). An `Err` says why it could not be: the original is
    /// then sent.
    fn shape(&self, request: &Request, form: &str) -> Result<Request, String>;
}
