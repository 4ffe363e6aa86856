//! Drivers for chips on I2C, SPI and GPIO, each generic over the embedded-hal 1.0 trait it
//! needs, plus the type-erased Linux buses the registry hands them.

pub mod ads1115;
pub mod bme280;
pub mod dynbus;
pub mod gpio;
pub mod mcp3008;
