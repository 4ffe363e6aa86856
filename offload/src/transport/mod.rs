//! Transports that carry protocol envelopes between a device and the edge.
//!
//! - [`mqtt`]: MQTT v5 over TLS 1.3 (rumqttc + rustls with the `ring` provider), mutual TLS,
//!   per-device topics, correlation by request id.

pub mod mqtt;
