//! `ferry-hal` owns the hardware abstraction that every other Ferry crate reads the board through:
//! the numeric precisions a board can run a model in, and (as the HAL grows) the `Sensor` and
//! driver traits over embedded-hal 1.0 buses, readings in fixed-capacity buffers, and the device
//! descriptor the agent publishes.
//!
//! It is `no_std` unless the `std` feature (on by default) is enabled, so that drivers written
//! against it can also run on a microcontroller.
//!
//! # Layout
//! - [`precision`]: the numeric precision of a model variant (FP32, INT8).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code, missing_docs)]

pub mod precision;

pub use precision::Precision;
