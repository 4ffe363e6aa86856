//! The edge server's configuration (`firmware-configs/edge.toml`). The struct is the
//! documentation: every field says what it does and its default; unknown keys are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_transport::mqtt::MqttConfig;
use ferry_runtime::Precision;
use serde::Deserialize;

/// Everything `ferry-edge` needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// How to reach the broker and who to be there (the `ferry-edge` certificate, whose CN
    /// the broker's ACL lets read every request and write every response).
    pub mqtt: MqttConfig,
    /// Shared-subscription group: every edge server of one group splits one request stream
    /// (`$share/<group>/ferry/+/req/+`). Default `ferry-edges`. Keep it out of device configs.
    #[serde(default = "default_share_group")]
    pub share_group: String,
    /// The model folder (one sub-folder per model with its `manifest.toml`). Default: as the
    /// agent finds it (`$FERRY_MODELS`, `./models`, the source tree's `models/`).
    #[serde(default)]
    pub models_dir: Option<PathBuf>,
    /// Requests waiting for a worker at most, all devices together; one more is answered
    /// "busy" at once, so the device runs it locally instead of queueing behind a backlog.
    /// Each device is guaranteed its share (`queue_capacity / devices queued`, at least 1):
    /// beyond it, its requests are "busy" once the queue is full, and within it, it gets in
    /// even then (the device most over its share gives up its newest). Default 32.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Answers waiting to be published at most. A worker finding it full waits (so the queue
    /// fills and the edge sheds with "busy"); an immediate answer finding it full is not sent
    /// and is counted (`answers_lost`, logged), the device's timeout covering it. Default 256.
    #[serde(default = "default_answer_capacity")]
    pub answer_capacity: usize,
    /// On SIGTERM or Ctrl-C, the longest the edge takes to answer what is queued ("busy"),
    /// finish what the workers hold, publish every answer and see the broker acknowledge it,
    /// before it disconnects anyway. Default 5000.
    #[serde(default = "default_shutdown_drain_ms")]
    pub shutdown_drain_ms: u64,
    /// Inference worker threads. Default 2.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Threads tract may use within one inference (per worker). Default 1.
    #[serde(default = "default_threads")]
    pub threads_per_worker: usize,
    /// Most requests of one model run as one batch. A worker takes what is already queued
    /// (never waits for more), so batching adds no latency. Default 8; 1 turns it off.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Classes returned per answer unless the model says otherwise. Default 5.
    #[serde(default = "default_top_k")]
    pub top_k: u8,
    /// Where the split halves of the models are cached (ONNX files cut from the models, made
    /// once). Default: `$FERRY_CACHE_DIR`, systemd's `$CACHE_DIRECTORY`,
    /// `$XDG_CACHE_HOME/ferry`, `~/.cache/ferry`, in that order.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// The models served, by name. Empty (the default): every model in `models_dir`, FP32.
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
}

/// How one model is served.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The variants loaded, the first one serving requests that ask for no precision.
    /// Default `["fp32"]`: the edge runs the full-precision model the device cannot afford.
    #[serde(default = "default_precisions")]
    pub precisions: Vec<Precision>,
    /// Classes returned for this model (default: the server's `top_k`).
    #[serde(default)]
    pub top_k: Option<u8>,
    /// Serve split requests for this model: at start, load the tail of every candidate cut
    /// of its FP32 graph (`ferry_runtime::split`; a model without cut points has none), so a
    /// device may run the head and send the crossing tensor. Default false: each tail is
    /// loaded and held in memory (efficientnet-lite0: 6 cuts), and cutting the model the
    /// first time takes a few seconds at start-up.
    #[serde(default)]
    pub splits: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            precisions: default_precisions(),
            top_k: None,
            splits: false,
        }
    }
}

fn default_share_group() -> String {
    "ferry-edges".into()
}
fn default_queue_capacity() -> usize {
    32
}
fn default_answer_capacity() -> usize {
    256
}
fn default_shutdown_drain_ms() -> u64 {
    5_000
}
fn default_workers() -> usize {
    2
}
fn default_threads() -> usize {
    1
}
fn default_max_batch() -> usize {
    8
}
fn default_top_k() -> u8 {
    5
}
fn default_precisions() -> Vec<Precision> {
    vec![Precision::Fp32]
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for this schema (the message names key and line).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("{key}: {reason}")]
    Value {
        /// The key.
        key: &'static str,
        /// What is expected.
        reason: String,
    },
    /// The MQTT section is unusable.
    #[error("mqtt: {0}")]
    Mqtt(#[from] ferry_transport::mqtt::ConfigError),
    /// A value in a file is unusable (the inner error names key and expectation).
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: Box<ConfigError>,
    },
}

impl EdgeConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<EdgeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks config text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<EdgeConfig, ConfigError> {
        let config: EdgeConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.check().map_err(|e| ConfigError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        Ok(config)
    }

    /// Checks ranges (files are opened at start, not here).
    pub fn check(&self) -> Result<(), ConfigError> {
        let value = |key, reason: &str| ConfigError::Value {
            key,
            reason: reason.to_owned(),
        };
        ferry_protocol::topics::edge_request_subscription(&self.share_group)
            .map_err(|e| value("share_group", &e.to_string()))?;
        if !(1..=65_536).contains(&self.queue_capacity) {
            return Err(value("queue_capacity", "1 to 65536"));
        }
        if !(1..=65_536).contains(&self.answer_capacity) {
            return Err(value("answer_capacity", "1 to 65536"));
        }
        if !(100..=600_000).contains(&self.shutdown_drain_ms) {
            return Err(value("shutdown_drain_ms", "100 to 600000 (ms)"));
        }
        if !(1..=256).contains(&self.workers) {
            return Err(value("workers", "1 to 256"));
        }
        if !(1..=64).contains(&self.threads_per_worker) {
            return Err(value("threads_per_worker", "1 to 64"));
        }
        if !(1..=256).contains(&self.max_batch) {
            return Err(value("max_batch", "1 to 256"));
        }
        if self.top_k == 0 {
            return Err(value("top_k", "1 to 255"));
        }
        for (name, model) in &self.models {
            if model.precisions.is_empty() {
                return Err(ConfigError::Value {
                    key: "models.<name>.precisions",
                    reason: format!("model `{name}` lists no precision"),
                });
            }
            if model.top_k == Some(0) {
                return Err(value("models.<name>.top_k", "1 to 255"));
            }
        }
        self.mqtt.check()?;
        self.mqtt.broker_addr()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../firmware-configs/edge.toml");

    #[test]
    fn the_shipped_edge_config_parses() {
        let c = EdgeConfig::parse(SHIPPED, Path::new("firmware-configs/edge.toml")).unwrap();
        assert_eq!(c.models["digits"].precisions, [Precision::Fp32]);
        assert!(c.mqtt.broker.starts_with("mqtts://"));
    }

    #[test]
    fn a_minimal_config_serves_every_model_in_fp32() {
        let c = EdgeConfig::parse("[mqtt]\nbroker = \"mqtts://h\"\n", Path::new("x")).unwrap();
        assert!(c.models.is_empty());
        assert_eq!(ModelConfig::default().precisions, [Precision::Fp32]);
        assert_eq!((c.queue_capacity, c.workers, c.max_batch), (32, 2, 8));
        assert_eq!((c.answer_capacity, c.shutdown_drain_ms), (256, 5_000));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = EdgeConfig::parse("[mqtt]\nbroker = \"mqtts://h\"\nqueue = 3\n", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue"), "{e}");
        let e = EdgeConfig::parse(
            "[mqtt]\nbroker = \"mqtts://h\"\n[models.digits]\nprecision = \"fp32\"\n",
            Path::new("x"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("precision"), "{e}");
    }

    #[test]
    fn a_value_out_of_range_is_refused_naming_file_key_and_what_is_expected() {
        let e = EdgeConfig::parse(
            "shutdown_drain_ms = 0\n[mqtt]\nbroker = \"mqtts://h\"\n",
            Path::new("/etc/ferry/edge.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/etc/ferry/edge.toml") && e.contains("shutdown_drain_ms") && e.contains("100 to 600000"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for bad in [
            "queue_capacity = 0",
            "answer_capacity = 0",
            "answer_capacity = 65537",
            "shutdown_drain_ms = 0",
            "shutdown_drain_ms = 600001",
            "workers = 0",
            "max_batch = 0",
            "share_group = \"a/b\"",
        ] {
            let text = format!("{bad}\n[mqtt]\nbroker = \"mqtts://h\"\n");
            assert!(EdgeConfig::parse(&text, Path::new("x")).is_err(), "{bad}");
        }
    }
}
