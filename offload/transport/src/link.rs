//! The transport-neutral edge link: what the executor needs from any transport.

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use ferry_protocol::{Request, Response};

/// The first request id of a run: the clock, µs since the Unix epoch (1 before it). Ids start
/// from the clock so that a restarted device does not reuse the ids of answers still on their
/// way to its previous incarnation.
pub fn request_id_seed() -> u64 {
    ferry_protocol::wall_clock_us().max(1)
}

/// Carries requests to one edge endpoint, over whatever transport.
pub trait EdgeLink: Send + Sync + 'static {
    /// Sends `request` and waits at most `timeout` for its response.
    fn offload(&self, request: Request, timeout: Duration) -> impl Future<Output = Result<Response, LinkError>> + Send;
}

/// What kind of failure an offload met, in terms every transport shares: every kind means
/// "run it locally"; they differ in what the decision should learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkErrorKind {
    /// No answer within the time allowed: the edge or the link is slow.
    Timeout,
    /// The link is down or (re)connecting.
    Unreachable,
    /// The other side refused the connection or the request (handshake, credentials, ACL).
    Refused,
    /// No edge server is there to take requests (none configured, none subscribed).
    NoEdge,
    /// This request cannot be sent as it is (too large, not encodable).
    BadRequest,
    /// The answer could not be read.
    Protocol,
    /// The link has been shut down.
    Closed,
}

/// Why an edge link gave no answer: a [`LinkErrorKind`] and the transport's own error, whose
/// message is this error's message.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct LinkError {
    kind: LinkErrorKind,
    #[source]
    source: Box<dyn Error + Send + Sync>,
}

impl LinkError {
    /// A link error of `kind`, caused by the transport error `source`.
    pub fn new(kind: LinkErrorKind, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self { kind, source: source.into() }
    }

    /// There is no link to this edge at all (not configured, not connected).
    pub fn no_link() -> Self {
        Self::new(LinkErrorKind::NoEdge, "no edge server is subscribed to requests")
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> LinkErrorKind {
        self.kind
    }

    /// The transport's own error, for callers that know the transport.
    pub fn transport_error(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.source
    }
}
