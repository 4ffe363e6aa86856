//! `ferry-drivers` owns Ferry's pluggable drivers: sensor chips on I2C/SPI/GPIO written against
//! embedded-hal 1.0, the Linux system probes (CPU, memory, thermal, network, power rails), and
//! the registry that builds them from a board config.
#![deny(unsafe_code, missing_docs)]
