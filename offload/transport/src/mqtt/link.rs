//! [`MqttOffloader`] as a transport-neutral [`EdgeLink`].

use std::future::Future;
use std::time::Duration;

use ferry_protocol::{Request, Response};

use super::{MqttOffloader, OffloadError};
use crate::link::{EdgeLink, LinkError, LinkErrorKind};

impl EdgeLink for MqttOffloader {
    fn offload(
        &self,
        request: Request,
        timeout: Duration,
    ) -> impl Future<Output = Result<Response, LinkError>> + Send {
        let sent = MqttOffloader::offload(self, request, timeout);
        async move { sent.await.map_err(LinkError::from) }
    }
}

impl From<OffloadError> for LinkError {
    fn from(e: OffloadError) -> Self {
        let kind = match &e {
            OffloadError::Timeout(_) => LinkErrorKind::Timeout,
            OffloadError::Disconnected(_) | OffloadError::TakenOver(_) => {
                LinkErrorKind::Unreachable
            }
            OffloadError::Refused(_) | OffloadError::NotAuthorized { .. } => LinkErrorKind::Refused,
            OffloadError::NoEdge => LinkErrorKind::NoEdge,
            OffloadError::Request(_) | OffloadError::TooLarge { .. } | OffloadError::Encode(_) => {
                LinkErrorKind::BadRequest
            }
            OffloadError::Protocol(_) => LinkErrorKind::Protocol,
            OffloadError::Closed => LinkErrorKind::Closed,
        };
        LinkError::new(kind, e)
    }
}
