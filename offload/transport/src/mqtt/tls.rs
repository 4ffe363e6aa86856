//! The rustls client configuration: only the configured CA is trusted, only TLS 1.3 is
//! offered unless the config allows 1.2, the device's certificate and key authenticate it,
//! and the crypto is `ring` (built through rumqttc's re-export so the rustls versions match).

use std::path::Path;
use std::sync::Arc;

use rumqttc::tokio_rustls::rustls;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

use super::config::{ConfigError, MqttConfig, TlsVersion};

/// Largest PEM file read (a certificate chain or key is a few KB).
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The protocol versions offered for a minimum version.
pub fn protocol_versions(min: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static TLS12_UP: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    match min {
        TlsVersion::Tls13 => &TLS13_ONLY,
        TlsVersion::Tls12 => &TLS12_UP,
    }
}

/// Builds the client config from `config`'s CA, certificate and key.
pub fn client_config(config: &MqttConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    let ca = config.ca.as_deref().ok_or(ConfigError::Missing("ca"))?;
    let cert = config.cert.as_deref().ok_or(ConfigError::Missing("cert"))?;
    let key = config.key.as_deref().ok_or(ConfigError::Missing("key"))?;
    build(
        ca,
        Some((cert, key)),
        protocol_versions(config.min_tls_version),
    )
}

/// Builds a client config trusting the CAs in `ca`, with an optional client identity, offering
/// exactly `versions`. Public so that tests can build deliberately limited clients.
pub fn build(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca)? {
        roots.add(cert).map_err(|e| ConfigError::Pem {
            path: ca.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(versions)
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| ConfigError::Tls(format!("{}: {e}", cert.display())))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let fail = |reason: String| ConfigError::Pem {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(fail(format!(
            "{} bytes is too large for a PEM file",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Pem {
            path: path.to_owned(),
            reason: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| ConfigError::Pem {
        path: path.to_owned(),
        reason: format!("no usable private key: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls13_is_the_only_version_offered_by_default() {
        let v = protocol_versions(TlsVersion::default());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].version, rustls::ProtocolVersion::TLSv1_3);
        assert_eq!(protocol_versions(TlsVersion::Tls12).len(), 2);
    }

    #[test]
    fn missing_files_are_config_errors_naming_the_file() {
        let c = MqttConfig::new("mqtts://h");
        assert!(matches!(client_config(&c), Err(ConfigError::Missing("ca"))));
        let c = c.with_tls_files("/nonexistent/ca.crt", "/x", "/y");
        let e = client_config(&c).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.crt"), "{e}");
    }
}
