//! Telemetry over MQTT with store-and-forward.
//!
//! Every message is appended to an on-disk write-ahead [`spool`] first; the [`publisher`]
//! drains the spool to the broker in order (QoS 1) and advances the spool's ack pointer only
//! on the broker's PUBACK. While the broker is unreachable the spool grows (bounded, oldest
//! dropped first and counted); after a restart or a power cut it is checked and its torn tail
//! cut off before anything is sent. See `README.md` in this folder for the topics.
//!
//! - [`config`]: [`TelemetryConfig`], the `[telemetry]` section.
//! - [`schema`]: the JSON envelope and the message bodies.
//! - [`spool`]: segment files, framing, checksums, recovery, the byte bound.
//! - [`publisher`]: the task that owns the MQTT connection.
//!
//! ```no_run
//! # async fn demo(mqtt: ferry_transport::mqtt::MqttConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use ferry_agent::telemetry::{schema, Publisher, Telemetry, TelemetryConfig};
//! let config = TelemetryConfig::default();
//! let device = ferry_protocol::DeviceId::new("dev-1")?;
//! let telemetry = Telemetry::open(&config, device)?;
//! let publisher = Publisher::start(&telemetry, &mqtt, &config, serde_json::json!({"board": "rpi4"}))?;
//! telemetry.send(schema::SENSORS, &schema::SensorData::default())?;
//! publisher.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod publisher;
pub mod schema;
pub mod spool;

use std::sync::{Arc, Mutex, MutexGuard};

use ferry_protocol::{topics, DeviceId};
use serde::Serialize;
use tokio::sync::Notify;

pub use config::TelemetryConfig;
pub use publisher::{Publisher, PublisherCounters};
pub use schema::{DecisionStats, DecisionWindow, Envelope, SensorData};
pub use spool::{Spool, SpoolStats};

/// Telemetry that cannot be set up or recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The `[telemetry]` section is wrong.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The MQTT settings are wrong.
    #[error("telemetry MQTT: {0}")]
    Mqtt(#[from] ferry_transport::mqtt::ConfigError),
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    /// A telemetry path is not valid in a topic.
    #[error("telemetry topic: {0}")]
    Topic(#[from] topics::TopicError),
    /// A message could not be serialised.
    #[error("telemetry JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) struct Inner {
    pub(crate) spool: Mutex<Spool>,
    /// Woken at every append, so the publisher sends at once.
    pub(crate) appended: Notify,
    pub(crate) device: DeviceId,
}

/// Locks a mutex, carrying on through poisoning: the spool stays consistent per call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The producers' handle: cheap to clone, every method takes `&self`. Sending appends to the
/// spool (blocking file I/O, an fsync under the default policy: call it from a task that
/// may block briefly, or through `spawn_blocking` on a busy runtime).
#[derive(Clone)]
pub struct Telemetry {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("device", &self.inner.device)
            .field("spool", &self.spool_stats())
            .finish()
    }
}

impl Telemetry {
    /// Checks the config and opens (or recovers) the spool.
    pub fn open(config: &TelemetryConfig, device: DeviceId) -> Result<Telemetry, TelemetryError> {
        config.check()?;
        let spool = Spool::open(config.spool_options())?;
        Ok(Telemetry {
            inner: Arc::new(Inner {
                spool: Mutex::new(spool),
                appended: Notify::new(),
                device,
            }),
        })
    }

    /// The device this telemetry is about.
    pub fn device(&self) -> DeviceId {
        self.inner.device
    }

    /// Spools `data` for `ferry/<device>/telemetry/<path>` in the standard envelope, stamped
    /// now. Returns its sequence number once it is in the spool.
    pub fn send<T: Serialize>(&self, path: &str, data: &T) -> Result<u64, TelemetryError> {
        let topic = topics::telemetry_topic(&self.inner.device, path)?;
        let seq = {
            let mut spool = lock(&self.inner.spool);
            let seq = spool.next_seq();
            let body = serde_json::to_vec(&Envelope {
                device_id: self.inner.device.to_string(),
                timestamp: schema::now_ms(),
                seq: Some(seq),
                data,
            })?;
            let record = schema::SpooledMessage {
                topic,
                retain: false,
                body,
            };
            spool.append(&record.encode())?
        };
        self.inner.appended.notify_one();
        Ok(seq)
    }

    /// Spools one sweep of sensor readings (`.../telemetry/sensors`).
    pub fn send_sensors(&self, data: &SensorData) -> Result<u64, TelemetryError> {
        self.send(schema::SENSORS, data)
    }

    /// Spools one window of decision statistics (`.../telemetry/decisions`).
    pub fn send_decisions(&self, stats: &DecisionStats) -> Result<u64, TelemetryError> {
        self.send(schema::DECISIONS, stats)
    }

    /// The spool's counters and sizes.
    pub fn spool_stats(&self) -> SpoolStats {
        lock(&self.inner.spool).stats()
    }

    /// Starts a task that publishes the statistics of `window` every `period` (first after
    /// one period) until the returned handle is aborted or dropped with the runtime.
    pub fn spawn_decision_reporter(
        &self,
        window: Arc<Mutex<DecisionWindow>>,
        period: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let telemetry = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let dropped = telemetry.spool_stats().dropped;
                let stats = lock(&window).take(period.as_secs_f64(), dropped);
                if let Err(e) = telemetry.send_decisions(&stats) {
                    tracing::warn!(error = %e, "decision statistics not spooled");
                }
            }
        })
    }
}
