//! The MQTT connection's configuration. The struct *is* the documentation: every field says
//! what it does and what it defaults to; unknown keys are refused.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use ferry_protocol::DEFAULT_MAX_MESSAGE_SIZE;

pub use super::backoff::Backoff;

/// Extra room on top of [`MqttConfig::max_message_size`] for the MQTT fixed header, topic and
/// v5 properties of one PUBLISH.
pub const PACKET_OVERHEAD: usize = 64 * 1024;

/// How to reach and authenticate to the broker. Shared by the device's offloader and the
/// edge server (which connects with its own certificate).
///
/// ```toml
/// broker = "mqtts://127.0.0.1:8883"
/// ca = "/etc/ferry/certs/ca.crt"
/// cert = "/etc/ferry/certs/dev-1.crt"
/// key = "/etc/ferry/certs/dev-1.key"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker URL: `mqtts://host:port` (TLS, port defaults to 8883) or `mqtt://host:port`
    /// (plain TCP, port defaults to 1883; refused unless `insecure = true`).
    pub broker: String,
    /// PEM file with the CA certificate(s) the broker's certificate must chain to. Only
    /// these are trusted: never the system roots. Required for `mqtts://`. Like `cert` and
    /// `key`: a path, or `credential:NAME` for the file systemd hands the service with
    /// `LoadCredential=NAME:/path` (read from `$CREDENTIALS_DIRECTORY`; an error outside
    /// systemd).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM file with this client's certificate (chain). Its CN is the identity the broker's
    /// ACL confines the client with.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM file with the private key of `cert` (PKCS#8, SEC1 or PKCS#1). Refused if its mode
    /// lets anyone but its owner read it (any group or other bit; in the credentials
    /// directory, group bits are allowed): `chmod 600` it, or let systemd hand it over with
    /// `LoadCredential=` and `key = "credential:NAME"` — the way for a `DynamicUser=`
    /// service, which cannot be given a key file of its own.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Oldest TLS version offered: `"1.3"` (default) or `"1.2"` (then 1.2 and 1.3 are both
    /// offered). Only lower it for a broker that cannot do 1.3.
    #[serde(default)]
    pub min_tls_version: TlsVersion,
    /// Allows `mqtt://` (plain TCP: no encryption, no authentication). A warning is logged
    /// at every start. Default false.
    #[serde(default)]
    pub insecure: bool,
    /// MQTT client id; default: the identity (device id, or `ferry-edge-<pid>`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// MQTT keep-alive, seconds (default 30, at least 5).
    #[serde(default = "default_keep_alive_s")]
    pub keep_alive_s: u16,
    /// Give up a connection attempt (TCP + TLS + CONNACK) after this long, ms (default 5000).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// First delay before reconnecting after a failure, ms (default 100); doubled after each
    /// failure in a row up to `reconnect_max_ms`. Each delay waited is drawn between half of
    /// it and all of it (jitter). The schedule starts again from here only after a connection
    /// that lasted 30 s (or three times `reconnect_max_ms`, if longer), so a broker that
    /// closes every connection at once is not hammered. After the broker handed this
    /// client's session to another client with the same client id (v5 DISCONNECT "session
    /// taken over"), the next delay is at least 1 s (or `reconnect_max_ms`, if shorter).
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest nominal delay between reconnection attempts, ms (default 10000).
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Largest envelope sent or accepted, bytes (default 4 MiB, the protocol's default). The
    /// MQTT packet limit is this plus 64 KiB for topic and headers; rumqttc's own default
    /// (10 KiB) would refuse images.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3.
    #[default]
    #[serde(rename = "1.3")]
    Tls13,
}

fn default_keep_alive_s() -> u16 {
    30
}
fn default_connect_timeout_ms() -> u64 {
    5000
}
fn default_reconnect_min_ms() -> u64 {
    100
}
fn default_reconnect_max_ms() -> u64 {
    10_000
}
fn default_max_message_size() -> usize {
    DEFAULT_MAX_MESSAGE_SIZE
}

/// A configuration that cannot work, found before connecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The broker URL is not `mqtts://host[:port]` or `mqtt://host[:port]`.
    #[error("broker `{url}`: {reason}")]
    BrokerUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `mqtt://` without `insecure = true`.
    #[error("broker `{0}` is plain TCP: set `insecure = true` to allow it (never in production)")]
    PlainTcpNotAllowed(String),
    /// A TLS connection lacks a file it needs.
    #[error("`{0}` is required for a TLS broker")]
    Missing(&'static str),
    /// A certificate or key file cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificates, key or versions.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A `credential:NAME` value that names no usable credential.
    #[error("`{key} = \"{value}\"`: {reason}")]
    Credential {
        /// The key (`ca`, `cert`, `key`).
        key: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A private key file that someone other than its owner can read.
    #[error(
        "key {p}: mode {m:04o} lets {who} read the private key: run `chmod 600 {p}` so that only \
         its owner can, or let systemd hand it to the service (`LoadCredential=NAME:{p}` in the \
         unit and `key = \"credential:NAME\"`)",
        p = .path.display(),
        m = .mode,
        who = .who
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Who besides the owner can read it.
        who: &'static str,
    },
    /// A numeric setting is out of range.
    #[error("`{key}`: {reason}")]
    Value {
        /// The key.
        key: &'static str,
        /// What is expected.
        reason: &'static str,
    },
}

/// Where to connect, as parsed from [`MqttConfig::broker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or IP address (what the server certificate must name).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// True for `mqtts://`.
    pub tls: bool,
}

impl MqttConfig {
    /// A config for `broker` with every other field at its default.
    pub fn new(broker: impl Into<String>) -> Self {
        MqttConfig {
            broker: broker.into(),
            ca: None,
            cert: None,
            key: None,
            min_tls_version: TlsVersion::default(),
            insecure: false,
            client_id: None,
            keep_alive_s: default_keep_alive_s(),
            connect_timeout_ms: default_connect_timeout_ms(),
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            max_message_size: default_max_message_size(),
        }
    }

    /// Sets CA, client certificate and key.
    pub fn with_tls_files(
        mut self,
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.ca = Some(ca.into());
        self.cert = Some(cert.into());
        self.key = Some(key.into());
        self
    }

    /// Parses and checks the broker URL (and that plain TCP is allowed if asked for).
    pub fn broker_addr(&self) -> Result<BrokerAddr, ConfigError> {
        let bad = |reason| ConfigError::BrokerUrl {
            url: self.broker.clone(),
            reason,
        };
        let (tls, rest) = if let Some(rest) = self.broker.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = self.broker.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(bad("expected mqtts://host[:port] or mqtt://host[:port]"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(bad("only host and port are allowed after the scheme"));
        }
        let default_port = if tls { 8883 } else { 1883 };
        // `[::1]:8883` for IPv6, else `host[:port]`.
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            match after.strip_prefix(':') {
                Some(p) => (h, p.parse().map_err(|_| bad("bad port"))?),
                None if after.is_empty() => (h, default_port),
                None => return Err(bad("junk after ]")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
                None => (rest, default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if port == 0 {
            return Err(bad("port 0"));
        }
        if !tls && !self.insecure {
            return Err(ConfigError::PlainTcpNotAllowed(self.broker.clone()));
        }
        Ok(BrokerAddr {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// Checks the numeric settings and the names of credentials (not the files: those are
    /// read when connecting).
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)] {
            let Some(value) = value else { continue };
            if let Some(name) = super::credentials::credential_name(value) {
                super::credentials::check_credential_name(name).map_err(|reason| {
                    ConfigError::Credential {
                        key,
                        value: value.display().to_string(),
                        reason: reason.to_owned(),
                    }
                })?;
            }
        }
        if self.keep_alive_s < 5 {
            return Err(ConfigError::Value {
                key: "keep_alive_s",
                reason: "at least 5",
            });
        }
        if self.connect_timeout_ms == 0 {
            return Err(ConfigError::Value {
                key: "connect_timeout_ms",
                reason: "more than 0",
            });
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(ConfigError::Value {
                key: "reconnect_min_ms",
                reason: "more than 0 and at most reconnect_max_ms",
            });
        }
        if self.max_message_size == 0 || self.max_packet_size().is_none() {
            return Err(ConfigError::Value {
                key: "max_message_size",
                reason: "more than 0 and less than 4 GiB - 64 KiB",
            });
        }
        Ok(())
    }

    /// The MQTT packet limit (both ways): the message limit plus room for headers.
    pub fn max_packet_size(&self) -> Option<u32> {
        u32::try_from(self.max_message_size.checked_add(PACKET_OVERHEAD)?).ok()
    }

    /// The connection timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MqttConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn minimal_config_gets_tls13_and_4mib_defaults() {
        let c = parse("broker = \"mqtts://127.0.0.1:8883\"").unwrap();
        assert_eq!(c.min_tls_version, TlsVersion::Tls13);
        assert!(!c.insecure);
        assert_eq!(c.max_message_size, DEFAULT_MAX_MESSAGE_SIZE);
        assert_eq!(c, MqttConfig::new("mqtts://127.0.0.1:8883"));
        c.check().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(parse("broker = \"mqtts://h\"\ntls_verison = \"1.2\"").is_err());
    }

    #[test]
    fn tls12_is_spelled_as_a_version_string() {
        let c = parse("broker = \"mqtts://h\"\nmin_tls_version = \"1.2\"").unwrap();
        assert_eq!(c.min_tls_version, TlsVersion::Tls12);
        assert!(parse("broker = \"mqtts://h\"\nmin_tls_version = \"1.1\"").is_err());
    }

    #[test]
    fn broker_urls_parse_with_default_ports() {
        let a = MqttConfig::new("mqtts://broker.lan").broker_addr().unwrap();
        assert_eq!((a.host.as_str(), a.port, a.tls), ("broker.lan", 8883, true));
        let a = MqttConfig::new("mqtts://[::1]:9000").broker_addr().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 9000));
        for bad in [
            "http://h",
            "mqtts://",
            "mqtts://h:x",
            "mqtts://h:0",
            "mqtts://u@h",
            "mqtts://h/x",
        ] {
            assert!(MqttConfig::new(bad).broker_addr().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_credential_name_is_refused_by_the_check() {
        let mut c = MqttConfig::new("mqtts://h").with_tls_files(
            "credential:ca.crt",
            "credential:device.crt",
            "credential:device.key",
        );
        c.check().unwrap();
        c.key = Some("credential:../device.key".into());
        let e = c.check().unwrap_err().to_string();
        assert!(
            e.contains("key = \"credential:../device.key\"") && e.contains("credential name"),
            "{e}"
        );
    }

    #[test]
    fn plain_tcp_needs_insecure() {
        let mut c = MqttConfig::new("mqtt://127.0.0.1:1883");
        assert!(matches!(
            c.broker_addr(),
            Err(ConfigError::PlainTcpNotAllowed(_))
        ));
        c.insecure = true;
        assert!(!c.broker_addr().unwrap().tls);
    }
}
