//! `ferry-tests` owns Ferry's end-to-end tests: they start real processes (the `ferry` and
//! `ferry-edge` binaries, a broker) and check what crosses between them.
#![deny(unsafe_code, missing_docs)]
//!
//! # Layout
//!
//! - [`harness`]: the development PKI, a Mosquitto broker from the shipped config, `ferry-edge`
//!   processes, all on free loopback ports and all killed on drop.
//! - [`netns`]: a device and an edge network namespace joined by a veth pair whose rate the
//!   kernel's `tbf` shapes (root only): the testbed of `tests/testbed.rs`.
//! - [`raw`]: a bare rumqttc client (no Ferry envelope) for what a device must *not* be able
//!   to do, and for the benchmark's baseline.
//! - `tests/*.rs`: round trip, security, bad input, shared subscription; `offload_bench.rs`
//!   is an ignored test (the benchmark in BENCHMARKS.md).

pub mod harness;
pub mod netns;
pub mod raw;
