//! MQTT topic names. Every device lives under `ferry/<device>/`; the broker's authorization
//! (`firmware-configs/mosquitto/make-dynsec.sh`) lets it publish its requests and telemetry and
//! read its responses, and refuses it everything else, subscriptions included:
//!
//! | topic | who publishes | what |
//! |---|---|---|
//! | `ferry/<device>/req/<model>` | device | a request envelope |
//! | `ferry/<device>/resp` | edge | response envelopes for that device |
//! | `ferry/<device>/telemetry/<path>` | device | readings, decisions, latencies (JSON) |
//!
//! Edge servers subscribe to [`edge_request_subscription`] (`$share/<group>/ferry/+/req/+`),
//! so the broker spreads requests over every edge of a group.

use core::fmt::Write as _;

use super::names::{validate_name, DeviceId, ModelName, NameError};

/// First level of every Ferry topic.
pub const ROOT: &str = "ferry";
/// Level between device and model in a request topic.
pub const REQ_LEVEL: &str = "req";
/// Level of a device's response topic.
pub const RESP_LEVEL: &str = "resp";
/// Level under which a device's telemetry lives.
pub const TELEMETRY_LEVEL: &str = "telemetry";
/// Filter matching every request of every device (without the shared-subscription prefix).
pub const REQUEST_FILTER: &str = "ferry/+/req/+";

/// A topic that is not what Ferry expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic does not have the expected levels.
    #[error("topic is not of the form {expected}")]
    Shape {
        /// The expected form.
        expected: &'static str,
    },
    /// The device level is not a valid device id.
    #[error("invalid device id in topic: {0}")]
    Device(NameError),
    /// The model level is not a valid model name.
    #[error("invalid model name in topic: {0}")]
    Model(NameError),
    /// A telemetry path level or a share group name is not a plain name.
    #[error("invalid topic level {index}: {error}")]
    Level {
        /// Index of the level within the caller's part.
        index: usize,
        /// What is wrong with it.
        error: NameError,
    },
}

/// `ferry/<device>/req/<model>`.
pub fn request_topic(device: &DeviceId, model: &ModelName) -> String {
    let mut s = String::new();
    write_request_topic(&mut s, device, model);
    s
}

/// Writes `ferry/<device>/req/<model>` into `out` (replacing its contents), so a device can
/// reuse one `String` and not allocate per request.
pub fn write_request_topic(out: &mut String, device: &DeviceId, model: &ModelName) {
    out.clear();
    // Writing into a String cannot fail.
    let _ = write!(out, "{ROOT}/{device}/{REQ_LEVEL}/{model}");
}

/// `ferry/<device>/resp`.
pub fn response_topic(device: &DeviceId) -> String {
    let mut s = String::new();
    write_response_topic(&mut s, device);
    s
}

/// Writes `ferry/<device>/resp` into `out` (replacing its contents).
pub fn write_response_topic(out: &mut String, device: &DeviceId) {
    out.clear();
    let _ = write!(out, "{ROOT}/{device}/{RESP_LEVEL}");
}

/// `ferry/<device>/telemetry/<path>`, where `path` is one or more `/`-separated levels of
/// `[A-Za-z0-9_.-]` (e.g. `readings`, `decisions/mobilenet_v2`).
pub fn telemetry_topic(device: &DeviceId, path: &str) -> Result<String, TopicError> {
    for (index, level) in path.split('/').enumerate() {
        validate_name(level.as_bytes()).map_err(|error| TopicError::Level { index, error })?;
    }
    Ok(format!("{ROOT}/{device}/{TELEMETRY_LEVEL}/{path}"))
}

/// `ferry/<device>/#`: the subtree every topic of a device is in.
pub fn device_filter(device: &DeviceId) -> String {
    format!("{ROOT}/{device}/#")
}

/// `$share/<group>/ferry/+/req/+`: the subscription every edge server of `group` makes.
pub fn edge_request_subscription(group: &str) -> Result<String, TopicError> {
    validate_name(group.as_bytes()).map_err(|error| TopicError::Level { index: 0, error })?;
    Ok(format!("$share/{group}/{REQUEST_FILTER}"))
}

/// Splits a request topic into its device and model, rejecting anything that is not exactly
/// `ferry/<device>/req/<model>` with valid names. The edge checks this against the device id
/// inside the envelope.
pub fn parse_request_topic(topic: &str) -> Result<(DeviceId, ModelName), TopicError> {
    const EXPECTED: &str = "ferry/<device>/req/<model>";
    let mut levels = topic.split('/');
    let (Some(ROOT), Some(device), Some(REQ_LEVEL), Some(model), None) = (
        levels.next(),
        levels.next(),
        levels.next(),
        levels.next(),
        levels.next(),
    ) else {
        return Err(TopicError::Shape { expected: EXPECTED });
    };
    let device = DeviceId::new(device).map_err(TopicError::Device)?;
    let model = ModelName::new(model).map_err(TopicError::Model)?;
    Ok((device, model))
}

/// The device of a response topic `ferry/<device>/resp`.
pub fn parse_response_topic(topic: &str) -> Result<DeviceId, TopicError> {
    const EXPECTED: &str = "ferry/<device>/resp";
    let mut levels = topic.split('/');
    let (Some(ROOT), Some(device), Some(RESP_LEVEL), None) =
        (levels.next(), levels.next(), levels.next(), levels.next())
    else {
        return Err(TopicError::Shape { expected: EXPECTED });
    };
    DeviceId::new(device).map_err(TopicError::Device)
}
