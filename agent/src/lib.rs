//! `ferry-agent` owns the device side of Ferry: the `ferry` command line and (as it grows) the
//! daemon that wires the drivers, the offload path and the local runtime together.
//!
//! # Layout
//! - [`cli`]: the command line, as clap types (the help text lives here).
//! - [`commands`]: one module per subcommand; `run` dispatches.
//! - [`logging`]: tracing to stderr, journald-friendly.
//! - [`rss`]: the process's resident memory, for benchmarks.
#![deny(unsafe_code, missing_docs)]

pub mod cli;
pub mod commands;
pub mod logging;
pub mod rss;
