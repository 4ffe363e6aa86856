//! `ferry-drivers` owns Ferry's pluggable drivers: sensor chips on I2C/SPI/GPIO written against
//! embedded-hal 1.0, the Linux system probes (CPU, memory, thermal, network, power rails), and
//! the registry that builds them from a board config.
//!
//! # Layout
//! - [`bus`]: chip drivers (BME280, ADS1115, MCP3008, GPIO), generic over embedded-hal, and the
//!   boxed buses the registry opens through linux-embedded-hal.
//! - [`probes`]: Linux system probes reading procfs/sysfs under a root path, allocation-free.
//! - [`config`]: the board config (`firmware-configs/*.toml`): typed, `deny_unknown_fields`,
//!   validated, every error collected with file, key and what was expected.
//! - [`registry`]: drivers by name; how each is validated, checked and built.
//! - [`set`]: the built sensors, swept together, each with its health and retry backoff.
//! - [`check`](mod@check): `ferry check` — everything short of starting.
#![deny(unsafe_code, missing_docs)]

pub mod bus;
pub mod check;
pub mod config;
pub mod describe;
pub mod driver;
pub mod probes;
pub mod registry;
pub mod set;

pub use check::{check, check_with, CheckReport, Warning};
pub use config::{BoardConfig, ConfigError, ConfigErrors};
pub use bus::linux::BusProvider;
pub use driver::DynSensor;
pub use registry::Registry;
pub use set::{Health, SensorSet, SensorStatus};
pub use describe::describe;
