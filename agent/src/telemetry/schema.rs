//! What goes on the wire: every telemetry message is one JSON object
//!
//! ```json
//! {"device_id": "dev-1", "timestamp": 1718000000123, "seq": 42, "data": {...}}
//! ```
//!
//! `timestamp` is milliseconds since the Unix epoch (when the message was made, not when it
//! was delivered: a spooled message keeps its time). `seq` is the spool's sequence number,
//! increasing per device; delivery is at least once, so a consumer that must not count a
//! message twice keeps the last `seq` it saw. Retained state messages (`descriptor`,
//! `status`) carry no `seq`.
//!
//! In the spool a message is stored as `flags: u8 | topic length: u16 LE | topic | JSON`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Topic path (under `ferry/<device>/telemetry/`) of sensor readings.
pub const SENSORS: &str = "sensors";
/// Topic path of decision statistics.
pub const DECISIONS: &str = "decisions";
/// Topic path of the device descriptor (retained).
pub const DESCRIPTOR: &str = "descriptor";
/// Topic path of the online/offline status (retained; the last will says `offline`).
pub const STATUS: &str = "status";

/// The envelope of every message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The device that sent it.
    pub device_id: String,
    /// Milliseconds since the Unix epoch when it was made.
    pub timestamp: u64,
    /// Spool sequence number (absent on retained state messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The payload proper.
    pub data: T,
}

/// Sensor readings of one sweep: flat `"<sensor>.<quantity>": value` pairs, so that a
/// consumer (Telegraf's json_v2) turns each into a field without knowing the sensors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SensorData {
    /// Values by `<sensor>.<quantity>` name, e.g. `"cpu.load": 0.31`.
    pub values: BTreeMap<String, f64>,
}

/// Decision statistics over one reporting window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionStats {
    /// Length of the window, seconds.
    pub window_s: f64,
    /// Requests per path (`local`, `edge`, `fallback`, …) in the window.
    pub counts: BTreeMap<String, u64>,
    /// End-to-end latency percentiles over the window, ms (absent when no request ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Percentiles>,
    /// Requests that missed their deadline in the window.
    pub deadline_misses: u64,
    /// Telemetry records the spool has dropped (full) since it was created.
    pub spool_dropped: u64,
}

/// Latency percentiles, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The status message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `online` or `offline`.
    pub state: String,
}

/// Collects decision outcomes between two reports. Keeps at most `capacity` latencies per
/// window (the rest are counted but not ranked), so memory stays bounded under load.
#[derive(Debug, Clone)]
pub struct DecisionWindow {
    counts: BTreeMap<String, u64>,
    latencies_ms: Vec<f64>,
    capacity: usize,
    deadline_misses: u64,
}

impl DecisionWindow {
    /// An empty window keeping up to `capacity` latencies.
    pub fn new(capacity: usize) -> Self {
        DecisionWindow {
            counts: BTreeMap::new(),
            latencies_ms: Vec::new(),
            capacity,
            deadline_misses: 0,
        }
    }

    /// Records one answered request: where it ran, how long it took, whether it missed its
    /// deadline.
    pub fn record(&mut self, path: &str, latency_ms: f64, missed_deadline: bool) {
        match self.counts.get_mut(path) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(path.to_owned(), 1);
            }
        }
        if self.latencies_ms.len() < self.capacity && latency_ms.is_finite() {
            self.latencies_ms.push(latency_ms);
        }
        if missed_deadline {
            self.deadline_misses += 1;
        }
    }

    /// The statistics of the window so far, and a fresh window.
    pub fn take(&mut self, window_s: f64, spool_dropped: u64) -> DecisionStats {
        let mut lat = std::mem::take(&mut self.latencies_ms);
        lat.sort_by(f64::total_cmp);
        let pick = |q: f64| -> f64 {
            let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
            lat.get(i.min(lat.len().saturating_sub(1))).copied().unwrap_or(0.0)
        };
        let latency_ms = (!lat.is_empty()).then(|| Percentiles {
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: lat.last().copied().unwrap_or(0.0),
        });
        DecisionStats {
            window_s,
            counts: std::mem::take(&mut self.counts),
            latency_ms,
            deadline_misses: std::mem::take(&mut self.deadline_misses),
            spool_dropped,
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    ferry_protocol::wall_clock_us() / 1000
}

/// A message as stored in the spool: where it goes, whether it is retained, its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledMessage {
    /// The full MQTT topic.
    pub topic: String,
    /// Published with the retain flag.
    pub retain: bool,
    /// The JSON body.
    pub body: Vec<u8>,
}

const FLAG_RETAIN: u8 = 1;

impl SpooledMessage {
    /// The spool record bytes.
    pub fn encode(&self) -> Vec<u8> {
        let topic = self.topic.as_bytes();
        let len = u16::try_from(topic.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(3 + topic.len() + self.body.len());
        out.push(if self.retain { FLAG_RETAIN } else { 0 });
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&topic[..usize::from(len)]);
        out.extend_from_slice(&self.body);
        out
    }

    /// Decodes spool record bytes (None if they are not a message).
    pub fn decode(bytes: &[u8]) -> Option<SpooledMessage> {
        let (&flags, rest) = bytes.split_first()?;
        let len = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
        let topic = rest.get(2..2 + len)?;
        let body = rest.get(2 + len..)?;
        Some(SpooledMessage {
            topic: String::from_utf8(topic.to_vec()).ok()?,
            retain: flags & FLAG_RETAIN != 0,
            body: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_serialises_to_the_seed_schema() {
        let e = Envelope {
            device_id: "dev-1".into(),
            timestamp: 1_700_000_000_123,
            seq: Some(7),
            data: Status { state: "online".into() },
        };
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"device_id": "dev-1", "timestamp": 1_700_000_000_123u64, "seq": 7, "data": {"state": "online"}})
        );
        let no_seq = Envelope { seq: None, ..e };
        assert!(serde_json::to_value(&no_seq).unwrap().get("seq").is_none());
    }

    #[test]
    fn decision_window_reports_counts_percentiles_and_misses_then_resets() {
        let mut w = DecisionWindow::new(1000);
        for i in 1..=100 {
            w.record(if i % 4 == 0 { "edge" } else { "local" }, i as f64, i > 98);
        }
        let s = w.take(10.0, 3);
        assert_eq!(s.counts["local"], 75);
        assert_eq!(s.counts["edge"], 25);
        assert_eq!(s.deadline_misses, 2);
        let p = s.latency_ms.unwrap();
        assert_eq!((p.p50.round(), p.p99, p.max), (51.0, 99.0, 100.0));
        assert_eq!(s.spool_dropped, 3);
        let empty = w.take(10.0, 3);
        assert!(empty.counts.is_empty() && empty.latency_ms.is_none());
    }

    #[test]
    fn spooled_messages_round_trip() {
        let m = SpooledMessage {
            topic: "ferry/dev-1/telemetry/sensors".into(),
            retain: true,
            body: b"{}".to_vec(),
        };
        assert_eq!(SpooledMessage::decode(&m.encode()), Some(m));
        assert_eq!(SpooledMessage::decode(&[0, 9]), None);
    }
}
