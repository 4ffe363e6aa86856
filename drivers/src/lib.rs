//! `ferry-drivers` owns Ferry's pluggable drivers: sensor chips on I2C/SPI/GPIO written against
//! embedded-hal 1.0, the Linux system probes (CPU, memory, thermal, network, power rails), and
//! the registry that builds them from a board config.
//!
//! # Layout
//! - [`driver`]: the contract a driver implements ([`Driver`](driver::Driver): name, params,
//!   validate, check, build) and its support types; drivers depend on this alone.
//! - [`bus`]: chip drivers (BME280, ADS1115, MCP3008, GPIO), each a directory of the chip,
//!   generic over embedded-hal, and its registry glue; the boxed buses ([`bus::dynbus`]); the
//!   Linux devices behind them ([`bus::linux`]); [`bus::register_all`].
//! - [`probes`]: Linux system probes reading procfs/sysfs under a root path, allocation-free,
//!   laid out like the chips; [`probes::register_all`].
//! - [`registry`]: drivers by name, filled by each family's `register_all`.
//! - [`config`]: the board config (`firmware-configs/*.toml`): typed, `deny_unknown_fields`,
//!   validated, every error collected with file, key and what was expected.
//! - [`set`]: the built sensors, swept together, each with its health and retry backoff.
//! - [`check`](mod@check): `ferry check` — everything short of starting.
//! - [`describe`](mod@describe): the device descriptor from the config and what the probes see.
#![deny(unsafe_code, missing_docs)]

pub mod bus;
pub mod check;
pub mod config;
pub mod describe;
pub mod driver;
pub mod probes;
pub mod registry;
pub mod set;

pub use bus::linux::BusProvider;
pub use check::{check, check_with, CheckReport, Warning};
pub use config::{BoardConfig, ConfigError, ConfigErrors};
pub use describe::describe;
pub use driver::DynSensor;
pub use registry::Registry;
pub use set::{Health, SensorSet, SensorStatus};
