//! What can go wrong with one offloaded request.

use std::time::Duration;

use ferry_protocol::{EncodeError, ResponseDecodeError};

/// Why an offload gave no answer. Every variant means "run it locally"; they differ in what
/// the scheduler should learn (a timeout says the edge is slow, `Disconnected` that the link
/// is down, `Refused`/`NotAuthorized` that retrying is pointless until the config changes).
/// An edge that answers "busy" is not an error: it is [`Status::Busy`](ferry_protocol::Status)
/// in the response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// No answer within the time allowed.
    #[error("no answer from the edge within {0:?}")]
    Timeout(Duration),
    /// Not connected to the broker (connecting, reconnecting, or the link dropped while the
    /// request was in flight).
    #[error("not connected to the broker{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    Disconnected(String),
    /// The connection was refused, by the broker (a TLS alert, a CONNACK refusal) or by this
    /// client (the broker's certificate: expired, another CA, not naming the address dialed).
    #[error("the connection to the broker was refused: {0}")]
    Refused(String),
    /// The broker handed this client's session to another client with the same client id
    /// (two processes with one identity); the link keeps retrying, slowly.
    #[error("the broker gave this session to another client: {0}")]
    TakenOver(String),
    /// The broker refused the request's publish (ACL): PUBACK `NotAuthorized`.
    #[error("the broker refused the publish on {topic}: {reason}")]
    NotAuthorized {
        /// The topic.
        topic: String,
        /// The PUBACK reason.
        reason: String,
    },
    /// No edge server is subscribed (v5 PUBACK `NoMatchingSubscribers`).
    #[error("no edge server is subscribed to requests")]
    NoEdge,
    /// The request cannot be sent as it is.
    #[error("bad request: {0}")]
    Request(String),
    /// The request is larger than the configured maximum message size.
    #[error("request is {size} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The request could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] EncodeError),
    /// The answer could not be decoded (and its header did not name a status).
    #[error("protocol error: {0}")]
    Protocol(#[from] ResponseDecodeError),
    /// The offloader has been shut down.
    #[error("the offloader is shut down")]
    Closed,
}
