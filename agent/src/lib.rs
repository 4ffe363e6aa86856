//! `ferry-agent` owns the device side of Ferry: the `ferry` command line and (as it grows) the
//! daemon that wires the drivers, the offload path and the local runtime together.
//!
//! # Layout
//! - [`service`]: the library entry point, [`run`]`(config, shutdown)` and [`Agent`], that
//!   `ferry run`, the demo and the tests call.
//! - [`daemon`]: config, local path, executor wiring, sensor loop, counters.
//! - [`api`]: the local HTTP API (TCP and Unix socket).
//! - `demo` (feature `demo`, on by default, off in the board build): `ferry demo`: broker,
//!   edge and emulated link in-process, policies compared.
//! - [`client`]: a blocking Rust client for the local API.
//! - [`cli`]: the command line, as clap types (the help text lives here).
//! - [`commands`]: one module per subcommand; `run` dispatches.
//! - [`logging`]: tracing to stderr, journald-friendly.
//! - [`malloc`]: glibc's mmap and trim thresholds fixed, so that RSS follows live memory.
//! - [`rss`]: the process's resident memory, for benchmarks.
//! - [`telemetry`]: telemetry over MQTT, spooled on disk while the broker is away.
#![deny(unsafe_code, missing_docs)]

pub mod api;
pub mod cli;
pub mod client;
pub mod commands;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod logging;
pub mod malloc;
pub mod rss;
pub mod service;
pub mod telemetry;

pub use service::{run, Agent, RunError};
