//! Why a connection attempt failed or a connection ended, reduced to what the link needs:
//! a message, and whether the broker refused us (as opposed to the network failing).

use rumqttc::tokio_rustls::rustls;
use rumqttc::v5::ConnectionError;

/// A failed attempt or a lost connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnection {
    /// For logs and for the link state.
    pub why: String,
    /// The broker does not accept us (TLS, certificate, CONNACK), so retrying soon will not
    /// help until the configuration changes.
    pub refused: bool,
}

impl Disconnection {
    /// A failure of the network or of the local client, not a refusal.
    pub fn network(why: impl Into<String>) -> Self {
        Disconnection {
            why: why.into(),
            refused: false,
        }
    }
}

impl From<&ConnectionError> for Disconnection {
    fn from(e: &ConnectionError) -> Self {
        Disconnection {
            why: e.to_string(),
            refused: is_refusal(e),
        }
    }
}

/// True for failures that mean "the broker does not accept us", as opposed to "the network
/// is down": TLS alerts and certificate errors, and CONNACK refusals.
pub fn is_refusal(e: &ConnectionError) -> bool {
    if matches!(e, ConnectionError::ConnectionRefused(_) | ConnectionError::Tls(_)) {
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
    ["fatal alert", "invalid peer certificate", "CertificateRequired", "HandshakeFailure"]
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
        let e = ConnectionError::Io(io::Error::other("received fatal alert: CertificateRequired"));
        assert!(is_refusal(&e));
    }

    #[test]
    fn a_reset_connection_or_a_timeout_is_not_a_refusal() {
        let reset = ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(!is_refusal(&reset));
        let state = ConnectionError::MqttState(StateError::Io(io::Error::from(io::ErrorKind::UnexpectedEof)));
        let d = Disconnection::from(&state);
        assert!(!d.refused);
        assert_eq!(d.why, state.to_string());
    }
}
