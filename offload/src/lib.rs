//! `ferry-offload` owns everything between "a request exists" and "it ran somewhere": the wire
//! protocol, the transports to the edge (MQTT over TLS, CoAP over DTLS), the estimators, the
//! cost model and policy that decide, and the scheduler that carries a decision out.
//!
//! # Layout
//!
//! - [`protocol`]: the request/response envelopes, their binary codec (total, zero-copy,
//!   allocation-free decoding) and the MQTT topic names.
//! - [`decide`]: estimators, cost model, policies, thermal governor, the per-request scheduler
//!   state machine, and the trace-driven simulator; synchronous, no I/O.
//! - [`transport`]: carrying envelopes to the edge; [`transport::mqtt`] is MQTT v5 over
//!   TLS 1.3 with mutual TLS ([`transport::mqtt::MqttOffloader`] on the device, the shared
//!   connection settings for the edge server).
//! - [`exec`]: the executor that carries a decision out over a local runner and edge links,
//!   driving the scheduler state machine and feeding outcomes back to the decider.
#![deny(unsafe_code, missing_docs)]

pub mod decide;
pub mod exec;
pub mod protocol;
pub mod transport;
