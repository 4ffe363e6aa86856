//! The rustls client configuration: only the configured CA is trusted, only TLS 1.3 is
//! offered unless the config allows 1.2, the device's certificate and key authenticate it,
//! and the crypto is `ring` (built through rumqttc's re-export so the rustls versions match).
//! The files may be systemd credentials, and a private key others can read is refused
//! (see [`credentials`](super::credentials)).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rumqttc::tokio_rustls::rustls;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

use super::config::{ConfigError, MqttConfig, TlsVersion};
use super::credentials::{self, PemFile};

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

/// Builds the client config from `config`'s CA, certificate and key (paths, or
/// `credential:NAME` in `$CREDENTIALS_DIRECTORY`).
pub fn client_config(config: &MqttConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    let ca = config.ca.as_deref().ok_or(ConfigError::Missing("ca"))?;
    let cert = config.cert.as_deref().ok_or(ConfigError::Missing("cert"))?;
    let key = config.key.as_deref().ok_or(ConfigError::Missing("key"))?;
    let ca = credentials::resolve("ca", ca)?;
    let cert = credentials::resolve("cert", cert)?;
    let key = credentials::resolve("key", key)?;
    build_from(
        &ca.path,
        Some((&cert.path, &key)),
        protocol_versions(config.min_tls_version),
    )
}

/// Builds a client config trusting the CAs in `ca`, with an optional client identity, offering
/// exactly `versions`. Public so that tests can build deliberately limited clients. The key
/// is refused if anyone but its owner can read it.
pub fn build(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, ConfigError> {
    let identity = identity.map(|(cert, key)| {
        let key = PemFile {
            path: key.to_owned(),
            credential: None,
        };
        (cert, key)
    });
    build_from(ca, identity.as_ref().map(|(c, k)| (*c, k)), versions)
}

fn build_from(
    ca: &Path,
    identity: Option<(&Path, &PemFile)>,
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

/// Reads a PEM file (at most [`MAX_PEM_BYTES`]) and returns it with its permission bits, both
/// from the one file opened.
fn read_pem(path: &Path) -> Result<(Vec<u8>, u32), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |reason: String| ConfigError::Pem {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(fail(format!(
            "{} bytes is too large for a PEM file",
            meta.len()
        )));
    }
    let mut pem = Vec::new();
    file.take(MAX_PEM_BYTES)
        .read_to_end(&mut pem)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    Ok((pem, meta.permissions().mode()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let (pem, _) = read_pem(path)?;
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

/// Reads a private key, refusing it before parsing if anyone but its owner can read it.
fn read_key(file: &PemFile) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let (pem, mode) = read_pem(&file.path)?;
    credentials::check_key_mode(file, mode)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| ConfigError::Pem {
        path: file.path.clone(),
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

    /// A development PKI made by the shipped script, for the tests that read real files.
    fn pki() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../firmware-configs/certs/make-dev-certs.sh"
        );
        let status = std::process::Command::new(script)
            .arg(dir.path())
            .arg("dev-1")
            .status()
            .expect("make-dev-certs.sh (needs openssl)");
        assert!(status.success());
        dir
    }

    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_world_or_group_readable_key_is_refused_and_a_0600_one_accepted() {
        let dir = pki();
        let (ca, crt, key) = (
            dir.path().join("ca.crt"),
            dir.path().join("dev-1.crt"),
            dir.path().join("dev-1.key"),
        );
        let config = MqttConfig::new("mqtts://h").with_tls_files(&ca, &crt, &key);
        client_config(&config).expect("the script writes keys 0600");
        for mode in [0o644, 0o640, 0o604] {
            chmod(&key, mode);
            let e = client_config(&config).unwrap_err();
            assert!(matches!(e, ConfigError::KeyPermissions { .. }), "{e}");
            let e = e.to_string();
            assert!(
                e.contains(&key.display().to_string()) && e.contains("chmod 600"),
                "{e}"
            );
        }
        // The tests' own clients are held to it too.
        chmod(&key, 0o644);
        assert!(build(
            &ca,
            Some((&crt, &key)),
            protocol_versions(TlsVersion::Tls13)
        )
        .is_err());
        chmod(&key, 0o400);
        build(
            &ca,
            Some((&crt, &key)),
            protocol_versions(TlsVersion::Tls13),
        )
        .unwrap();
    }

    #[test]
    fn certificates_and_keys_can_be_systemd_credentials() {
        // As systemd lays them out for LoadCredential=: the key group-readable through an ACL.
        let dir = pki();
        let creds = tempfile::tempdir().unwrap();
        for (from, to) in [
            ("ca.crt", "ca.crt"),
            ("dev-1.crt", "device.crt"),
            ("dev-1.key", "device.key"),
        ] {
            std::fs::copy(dir.path().join(from), creds.path().join(to)).unwrap();
            chmod(&creds.path().join(to), 0o440);
        }
        let file = |name: &str| {
            credentials::resolve_in(
                "key",
                Path::new(&format!("credential:{name}")),
                Some(creds.path()),
            )
            .unwrap()
        };
        let (ca, crt, key) = (file("ca.crt"), file("device.crt"), file("device.key"));
        build_from(
            &ca.path,
            Some((&crt.path, &key)),
            protocol_versions(TlsVersion::Tls13),
        )
        .expect("credentials");
        chmod(&key.path, 0o444);
        let e = build_from(
            &ca.path,
            Some((&crt.path, &key)),
            protocol_versions(TlsVersion::Tls13),
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::KeyPermissions { .. }), "{e}");
    }
}
