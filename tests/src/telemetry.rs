//! What the telemetry tests read: a device's telemetry topics through `mosquitto_sub -v`
//! (one `topic payload` line a message), parsed.

use std::time::Duration;

use crate::harness::{Broker, Proc};

/// The device the telemetry tests publish as.
pub const DEVICE: &str = "dev-1";
/// The identity the telemetry tests read it with.
pub const COLLECTOR: &str = "ferry-collector";

/// Publishes a retained probe to the device's telemetry (with `mosquitto_pub`), starts a
/// [`Broker::subscriber`] on every telemetry topic of the device, with the collector's
/// certificate (`ferry-collector`: the broker lets it read telemetry, and a device only write
/// its own) and a persistent session under `client_id`, and waits until it printed the probe:
/// from then on it is subscribed.
pub fn ready_subscriber(broker: &Broker, client_id: &str) -> Proc {
    broker.publish_retained(
        DEVICE,
        &format!("ferry/{DEVICE}/telemetry/probe"),
        &format!(r#"{{"device_id":"{DEVICE}","timestamp":1700000000000,"data":{{}}}}"#),
    );
    let sub = broker.subscriber(COLLECTOR, client_id, &format!("ferry/{DEVICE}/telemetry/#"));
    let probe = format!("ferry/{DEVICE}/telemetry/probe ");
    assert!(
        sub.stdout.wait(Duration::from_secs(60), |l| l.iter().any(|l| l.starts_with(&probe))),
        "subscriber not ready: {}\nbroker:\n{}",
        sub.stderr.text(),
        broker.proc.stderr.text()
    );
    sub
}

/// One line of `mosquitto_sub -v`: topic and JSON.
pub fn parse_line(line: &str) -> (String, serde_json::Value) {
    let (topic, json) = line.split_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
    let value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    (topic.to_owned(), value)
}

/// The `data."load.n"` values of the sensor messages a subscriber printed, in order.
pub fn sensor_numbers(lines: &[String]) -> Vec<u64> {
    let sensors = format!("ferry/{DEVICE}/telemetry/sensors ");
    lines
        .iter()
        .filter(|l| l.starts_with(&sensors))
        .map(|l| {
            let (_, v) = parse_line(l);
            v["data"]["load.n"].as_f64().unwrap_or_else(|| panic!("no data.load.n: {l}")) as u64
        })
        .collect()
}
