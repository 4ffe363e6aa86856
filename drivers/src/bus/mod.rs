//! Drivers for chips on I2C, SPI and GPIO, each generic over the embedded-hal 1.0 trait it
//! needs, plus the type-erased buses the registry hands them and the Linux devices it opens.
//!
//! Each chip is a directory: `mod.rs` is the chip driver and `driver.rs` its registry glue
//! (params, validation, check, build). The chip half uses only embedded-hal, heapless and
//! ferry-hal, no std and no config, so that it can be tested against bus mocks alone and could
//! move to a no_std crate unchanged.

pub mod ads1115;
pub mod bme280;
pub mod dynbus;
pub mod gpio;
pub mod linux;
pub mod mcp3008;

use crate::registry::Registry;

/// Registers every bus driver. Adding a chip: its module, then one line here.
pub fn register_all(registry: &mut Registry) {
    registry
        .register::<bme280::Bme280Driver>()
        .register::<ads1115::Ads1115Driver>()
        .register::<mcp3008::Mcp3008Driver>()
        .register::<gpio::GpioInputDriver>()
        .register::<gpio::GpioOutputDriver>();
}
