//! `ferry-hal` owns the hardware abstraction that every other Ferry crate reads the board through:
//! the `Sensor` trait, readings in fixed-capacity buffers, driver and device descriptors, and the
//! numeric precisions a board can run a model in.
//!
//! It is `no_std` unless the `std` feature (on by default) is enabled, so that drivers written
//! against it can also run on a microcontroller. Nothing here allocates: readings and descriptors
//! live in [`heapless`] buffers whose capacities are the constants below.
//!
//! Buses are the embedded-hal 1.0 traits, re-exported as [`bus`]: a driver is generic over
//! `I2c`, `SpiDevice`, `InputPin`/`OutputPin` and `DelayNs` and never knows whether it runs on
//! Linux.
//!
//! # Layout
//! - [`precision`]: the numeric precision of a model variant (FP32, INT8).
//! - [`quantity`]: what a sample measures ([`Quantity`]) and in what [`Unit`].
//! - [`reading`]: one read of a sensor: a [`Timestamp`] and up to [`MAX_SAMPLES`] [`Sample`]s.
//! - [`sensor`]: the [`Sensor`] trait and the [`DriverDescriptor`] (name, bus, quantities).
//! - [`device`]: the [`DeviceDescriptor`] the agent publishes (board, cores, memory, accelerators,
//!   precisions, measured throughput per model).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code, missing_docs)]

pub mod device;
pub mod precision;
pub mod quantity;
pub mod reading;
pub mod sensor;

pub use device::{Accelerator, CpuCluster, DeviceDescriptor, ModelThroughput};
pub use precision::Precision;
pub use quantity::{Quantity, Unit};
pub use reading::{Label, Reading, Sample, Timestamp, MAX_SAMPLES};
pub use sensor::{Bus, DriverDescriptor, Sensor, MAX_QUANTITIES};

/// The embedded-hal 1.0 bus traits every bus driver is generic over.
pub mod bus {
    pub use embedded_hal::delay::DelayNs;
    pub use embedded_hal::digital::{InputPin, OutputPin};
    pub use embedded_hal::i2c::I2c;
    pub use embedded_hal::spi::SpiDevice;
}
