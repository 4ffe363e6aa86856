//! `ferry-transport` carries protocol envelopes between a device and the edge. The executor
//! sees only the transport-neutral [`EdgeLink`]; each transport implements it.
//!
//! # Layout
//!
//! - [`link`]: [`EdgeLink`] and its error ([`LinkError`], [`LinkErrorKind`]), shared by every
//!   transport.
//! - [`mqtt`]: MQTT v5 over TLS 1.3 (rumqttc + rustls with the `ring` provider), mutual TLS,
//!   per-device topics, correlation by request id: the device's [`mqtt::MqttOffloader`] and
//!   what the edge server and the telemetry publisher share with it: the connection settings
//!   and [`mqtt::session`], the I/O-free session layer (link state and reconnect backoff,
//!   resubscription, PUBACK reasons, request correlation) that drives all three event loops.
#![deny(unsafe_code, missing_docs)]

pub mod link;
pub mod mqtt;

pub use link::{request_id_seed, EdgeLink, LinkError, LinkErrorKind};
