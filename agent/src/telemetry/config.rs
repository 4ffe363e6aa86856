//! The `[telemetry]` section. The broker, TLS files and reconnect timing are the MQTT
//! client's ([`ferry_transport::mqtt::MqttConfig`]); this says what to publish and
//! how to spool it.
//!
//! ```toml
//! [telemetry]
//! spool_dir = "/var/lib/ferry/spool"
//! max_spool_bytes = 67108864
//! fsync_interval_ms = 0
//! decisions_interval_s = 60
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::spool::{FsyncPolicy, SpoolOptions};

/// Telemetry settings. Every field has a default; unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Publish telemetry at all (default true).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Directory of the spool's segment files (default `/var/lib/ferry/spool`, i.e. systemd's
    /// `StateDirectory=ferry` plus `spool`). Must survive reboots for store-and-forward to.
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Upper bound on the spool's size on disk, bytes (default 64 MiB). When full, the
    /// oldest undelivered messages are dropped first and counted (`spool_dropped` in the
    /// decision statistics).
    #[serde(default = "default_max_spool_bytes")]
    pub max_spool_bytes: u64,
    /// Size of one segment file, bytes (default 1 MiB; at most half of
    /// `max_spool_bytes`). Space is freed a segment at a time.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// How often appended messages are forced to disk: 0 (default) after every message,
    /// so a power cut loses nothing that was spooled; N > 0 at most every N ms (fewer
    /// writes to flash; up to N ms of messages at risk in a power cut, none in a crash).
    #[serde(default)]
    pub fsync_interval_ms: u64,
    /// Decision statistics are published every this many seconds (default 60).
    #[serde(default = "default_decisions_interval_s")]
    pub decisions_interval_s: u64,
    /// Messages published and not yet acknowledged by the broker at once (default 16, at
    /// most [`MAX_OUTGOING_INFLIGHT`](ferry_transport::mqtt::MAX_OUTGOING_INFLIGHT), the
    /// bound every Ferry MQTT connection keeps).
    #[serde(default = "default_max_inflight")]
    pub max_inflight: u16,
    /// MQTT client id of the telemetry connection (default `<device>-telemetry`; it must
    /// differ from the offload connection's, or the broker disconnects one for the other).
    #[serde(default)]
    pub client_id: Option<String>,
}

fn default_enabled() -> bool {
    true
}
fn default_spool_dir() -> PathBuf {
    PathBuf::from("/var/lib/ferry/spool")
}
fn default_max_spool_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_segment_bytes() -> u64 {
    1024 * 1024
}
fn default_decisions_interval_s() -> u64 {
    60
}
fn default_max_inflight() -> u16 {
    16
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: default_enabled(),
            spool_dir: default_spool_dir(),
            max_spool_bytes: default_max_spool_bytes(),
            segment_bytes: default_segment_bytes(),
            fsync_interval_ms: 0,
            decisions_interval_s: default_decisions_interval_s(),
            max_inflight: default_max_inflight(),
            client_id: None,
        }
    }
}

/// A telemetry setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("telemetry `{key}`: {reason}")]
pub struct ConfigError {
    /// The key.
    pub key: &'static str,
    /// What is expected.
    pub reason: &'static str,
}

impl TelemetryConfig {
    /// Checks the values against each other.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.segment_bytes < 4096 {
            return Err(ConfigError {
                key: "segment_bytes",
                reason: "at least 4096",
            });
        }
        if self.max_spool_bytes < self.segment_bytes.saturating_mul(2) {
            return Err(ConfigError {
                key: "max_spool_bytes",
                reason: "at least twice segment_bytes",
            });
        }
        if self.decisions_interval_s == 0 {
            return Err(ConfigError {
                key: "decisions_interval_s",
                reason: "more than 0",
            });
        }
        if self.max_inflight == 0 {
            return Err(ConfigError {
                key: "max_inflight",
                reason: "more than 0",
            });
        }
        // The connection never has more in flight than this: a larger window would be
        // accepted and not honoured.
        if self.max_inflight > ferry_transport::mqtt::MAX_OUTGOING_INFLIGHT {
            return Err(ConfigError {
                key: "max_inflight",
                reason: "at most 256 (the MQTT connection's bound on unacknowledged publishes)",
            });
        }
        Ok(())
    }

    /// The spool options this config asks for.
    pub fn spool_options(&self) -> SpoolOptions {
        SpoolOptions {
            dir: self.spool_dir.clone(),
            max_bytes: self.max_spool_bytes,
            segment_bytes: self.segment_bytes,
            fsync: match self.fsync_interval_ms {
                0 => FsyncPolicy::EveryRecord,
                ms => FsyncPolicy::Interval(Duration::from_millis(ms)),
            },
        }
    }

    /// The decision statistics period.
    pub fn decisions_interval(&self) -> Duration {
        Duration::from_secs(self.decisions_interval_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_gets_the_documented_defaults() {
        let c: TelemetryConfig = toml::from_str("").unwrap();
        assert_eq!(c, TelemetryConfig::default());
        assert_eq!(c.spool_dir, PathBuf::from("/var/lib/ferry/spool"));
        assert_eq!(c.spool_options().fsync, FsyncPolicy::EveryRecord);
        c.check().unwrap();
    }

    #[test]
    fn the_documented_example_section_parses() {
        let c: TelemetryConfig = toml::from_str(
            "spool_dir = \"/var/lib/ferry/spool\"\nmax_spool_bytes = 67108864\n\
             fsync_interval_ms = 0\ndecisions_interval_s = 60",
        )
        .unwrap();
        assert_eq!(c, TelemetryConfig::default());
    }

    #[test]
    fn the_shipped_telegraf_config_subscribes_to_every_device_and_reads_the_timestamp() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware-configs/telegraf/ferry.conf");
        let text = std::fs::read_to_string(path).unwrap();
        let conf: toml::Value = toml::from_str(&text).unwrap();
        let mqtt = &conf["inputs"]["mqtt_consumer"][0];
        assert_eq!(mqtt["topics"][0].as_str(), Some("ferry/+/telemetry/#"));
        assert_eq!(mqtt["data_format"].as_str(), Some("json_v2"));
        let json = &mqtt["json_v2"][0];
        assert_eq!(json["timestamp_path"].as_str(), Some("timestamp"));
        assert_eq!(json["timestamp_format"].as_str(), Some("unix_ms"));
        assert_eq!(json["object"][0]["path"].as_str(), Some("data"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<TelemetryConfig>("spool_size = 5").is_err());
    }

    #[test]
    fn an_interval_fsync_and_bad_bounds_are_read_as_meant() {
        let c: TelemetryConfig = toml::from_str("fsync_interval_ms = 250").unwrap();
        assert_eq!(c.spool_options().fsync, FsyncPolicy::Interval(Duration::from_millis(250)));
        let c: TelemetryConfig =
            toml::from_str("max_spool_bytes = 100000\nsegment_bytes = 65536").unwrap();
        assert_eq!(c.check().unwrap_err().key, "max_spool_bytes");
    }

    #[test]
    fn a_window_beyond_the_connections_inflight_bound_is_refused() {
        let bound = ferry_transport::mqtt::MAX_OUTGOING_INFLIGHT;
        let c: TelemetryConfig = toml::from_str(&format!("max_inflight = {bound}")).unwrap();
        c.check().unwrap();
        let c: TelemetryConfig = toml::from_str(&format!("max_inflight = {}", bound + 1)).unwrap();
        let e = c.check().unwrap_err();
        assert_eq!(e.key, "max_inflight");
        assert!(e.reason.contains(&bound.to_string()), "{}", e.reason);
    }
}
