//! Why a connection attempt failed or a connection ended, reduced to what the link needs:
//! a message, whether the broker refused us (as opposed to the network failing), whether it
//! handed our session to another client with the same client id, and whether the broker's
//! end closed the connection (which is all a takeover looks like from a broker that does not
//! send the v5 reason: Mosquitto 2.0.11 closes the old connection without a DISCONNECT).

use rumqttc::tokio_rustls::rustls;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use rumqttc::v5::{ConnectionError, StateError};

/// A failed attempt or a lost connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnection {
    /// For logs and for the link state.
    pub why: String,
    /// The broker does not accept us (TLS, certificate, CONNACK), so retrying soon will not
    /// help until the configuration changes.
    pub refused: bool,
    /// The broker closed the connection because another client connected with the same
    /// client id (MQTT v5 DISCONNECT 0x8E, "session taken over"): two processes hold one
    /// identity.
    pub taken_over: bool,
    /// The connection ended because the broker's end closed it (end of stream, reset, or a
    /// DISCONNECT), not because of a local error or a timeout.
    pub closed_by_peer: bool,
}

impl Disconnection {
    /// A failure of the network or of the local client, not a refusal.
    pub fn network(why: impl Into<String>) -> Self {
        Disconnection {
            why: why.into(),
            refused: false,
            taken_over: false,
            closed_by_peer: false,
        }
    }

    /// A refusal by the broker (TLS, certificate, CONNACK, a subscription).
    pub fn refusal(why: impl Into<String>) -> Self {
        Disconnection {
            why: why.into(),
            refused: true,
            taken_over: false,
            closed_by_peer: false,
        }
    }
}

impl From<&ConnectionError> for Disconnection {
    fn from(e: &ConnectionError) -> Self {
        Disconnection {
            why: e.to_string(),
            refused: is_refusal(e),
            taken_over: is_takeover(e),
            closed_by_peer: is_closed_by_peer(e),
        }
    }
}

/// True when the broker's end closed the connection: end of stream, a reset, or a DISCONNECT.
pub fn is_closed_by_peer(e: &ConnectionError) -> bool {
    use std::io::ErrorKind;
    let closed = |k: ErrorKind| {
        matches!(
            k,
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        )
    };
    match e {
        ConnectionError::MqttState(StateError::ConnectionAborted)
        | ConnectionError::MqttState(StateError::ServerDisconnect { .. }) => true,
        ConnectionError::MqttState(StateError::Io(io)) | ConnectionError::Io(io) => {
            closed(io.kind())
        }
        _ => false,
    }
}

/// True when the broker closed the connection with DISCONNECT "session taken over": another
/// client connected with this client id.
pub fn is_takeover(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        })
    )
}

/// True for failures that mean "the broker does not accept us", as opposed to "the network
/// is down": TLS alerts and certificate errors, and CONNACK refusals.
pub fn is_refusal(e: &ConnectionError) -> bool {
    if matches!(
        e,
        ConnectionError::ConnectionRefused(_) | ConnectionError::Tls(_)
    ) {
        return true;
    }
    // rustls reports the server's alert (unknown CA, certificate required, protocol version)
    // and its own verification failures as I/O errors wrapping its error; rumqttc sometimes
    // keeps only their text (e.g. inside a state error while reading the CONNACK).
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    for _ in 0..8 {
        let Some(err) = source else { break };
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                return true;
            }
        }
        source = err.source();
    }
    let text = e.to_string();
    [
        "fatal alert",
        "invalid peer certificate",
        "CertificateRequired",
        "HandshakeFailure",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use std::io;

    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode;
    use rumqttc::v5::StateError;

    use super::*;

    #[test]
    fn a_connack_refusal_is_a_refusal() {
        let e = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        assert!(is_refusal(&e));
        assert!(Disconnection::from(&e).refused);
    }

    #[test]
    fn a_rustls_certificate_error_inside_an_io_error_is_a_refusal() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let e = ConnectionError::Io(io::Error::new(io::ErrorKind::InvalidData, tls));
        assert!(is_refusal(&e));
    }

    #[test]
    fn a_tls_alert_known_only_by_its_text_is_a_refusal() {
        let e = ConnectionError::Io(io::Error::other(
            "received fatal alert: CertificateRequired",
        ));
        assert!(is_refusal(&e));
    }

    #[test]
    fn a_session_taken_over_is_a_takeover_and_not_a_refusal() {
        let e = ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            reason_string: None,
        });
        let d = Disconnection::from(&e);
        assert!(d.taken_over && !d.refused && d.closed_by_peer, "{d:?}");
        let other = ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::ServerShuttingDown,
            reason_string: None,
        });
        assert!(!is_takeover(&other));
    }

    #[test]
    fn a_reset_connection_or_a_timeout_is_not_a_refusal() {
        let reset = ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(!is_refusal(&reset));
        let state = ConnectionError::MqttState(StateError::Io(io::Error::from(
            io::ErrorKind::UnexpectedEof,
        )));
        let d = Disconnection::from(&state);
        assert!(!d.refused && !d.taken_over);
        assert_eq!(d.why, state.to_string());
    }

    #[test]
    fn an_end_of_stream_or_a_reset_is_closed_by_the_peer_and_a_timeout_is_not() {
        // What Mosquitto 2.0.11 does to the old connection when another client takes the id.
        assert!(
            Disconnection::from(&ConnectionError::MqttState(StateError::ConnectionAborted))
                .closed_by_peer
        );
        let reset = ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(is_closed_by_peer(&reset));
        let refused = ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(!is_closed_by_peer(&refused));
        assert!(!is_closed_by_peer(&ConnectionError::MqttState(
            StateError::AwaitPingResp
        )));
    }
}
