//! Opening buses: the [`BusProvider`] seam between the drivers and the machine, and
//! [`LinuxBuses`], which opens the real devices through linux-embedded-hal.

use std::path::Path;

use crate::bus::dynbus::{DynDelay, DynI2c, DynInput, DynOutput, DynSpi};

/// Opens buses. [`LinuxBuses`] opens the real devices; tests pass mocks.
pub trait BusProvider: Send + Sync {
    /// Whether `device` exists (absent devices are warnings in `ferry check`).
    fn exists(&self, device: &Path) -> bool {
        device.exists()
    }
    /// Opens an I2C bus such as `/dev/i2c-1`.
    fn i2c(&self, device: &Path) -> Result<DynI2c, String>;
    /// Opens an SPI device such as `/dev/spidev0.0` at `speed_hz`, mode 0.
    fn spi(&self, device: &Path, speed_hz: u32) -> Result<DynSpi, String>;
    /// Requests `line` of GPIO chip `chip` as an input.
    fn gpio_input(&self, chip: &Path, line: u32) -> Result<DynInput, String>;
    /// Requests `line` of GPIO chip `chip` as an output at `high`.
    fn gpio_output(&self, chip: &Path, line: u32, high: bool) -> Result<DynOutput, String>;
    /// A delay.
    fn delay(&self) -> DynDelay;
}

/// The buses of the Linux board Ferry runs on, through linux-embedded-hal.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxBuses;

#[cfg(target_os = "linux")]
impl BusProvider for LinuxBuses {
    fn i2c(&self, device: &Path) -> Result<DynI2c, String> {
        linux_embedded_hal::I2cdev::new(device).map(DynI2c::new).map_err(|e| e.to_string())
    }
    fn spi(&self, device: &Path, speed_hz: u32) -> Result<DynSpi, String> {
        use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
        let mut dev = linux_embedded_hal::SpidevDevice::open(device).map_err(|e| e.to_string())?;
        let opts = SpidevOptions::new().bits_per_word(8).max_speed_hz(speed_hz).mode(SpiModeFlags::SPI_MODE_0).build();
        dev.configure(&opts).map_err(|e| e.to_string())?;
        Ok(DynSpi::new(dev))
    }
    fn gpio_input(&self, chip: &Path, line: u32) -> Result<DynInput, String> {
        use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
        let mut c = Chip::new(chip).map_err(|e| e.to_string())?;
        let h = c.get_line(line).and_then(|l| l.request(LineRequestFlags::INPUT, 0, "ferry")).map_err(|e| e.to_string())?;
        linux_embedded_hal::CdevPin::new(h).map(DynInput::new).map_err(|e| e.to_string())
    }
    fn gpio_output(&self, chip: &Path, line: u32, high: bool) -> Result<DynOutput, String> {
        use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
        let mut c = Chip::new(chip).map_err(|e| e.to_string())?;
        let h = c
            .get_line(line)
            .and_then(|l| l.request(LineRequestFlags::OUTPUT, u8::from(high), "ferry"))
            .map_err(|e| e.to_string())?;
        linux_embedded_hal::CdevPin::new(h).map(DynOutput::new).map_err(|e| e.to_string())
    }
    fn delay(&self) -> DynDelay {
        DynDelay::new(linux_embedded_hal::Delay)
    }
}

// Elsewhere the crate still builds, so that configs can be checked on a laptop; every bus is
// then absent or fails to open, which `ferry check` reports as warnings.
#[cfg(not(target_os = "linux"))]
impl BusProvider for LinuxBuses {
    fn i2c(&self, _: &Path) -> Result<DynI2c, String> {
        Err("I2C needs Linux".into())
    }
    fn spi(&self, _: &Path, _: u32) -> Result<DynSpi, String> {
        Err("SPI needs Linux".into())
    }
    fn gpio_input(&self, _: &Path, _: u32) -> Result<DynInput, String> {
        Err("GPIO needs Linux".into())
    }
    fn gpio_output(&self, _: &Path, _: u32, _: bool) -> Result<DynOutput, String> {
        Err("GPIO needs Linux".into())
    }
    fn delay(&self) -> DynDelay {
        struct Spin;
        impl embedded_hal::delay::DelayNs for Spin {
            fn delay_ns(&mut self, ns: u32) {
                std::thread::sleep(std::time::Duration::from_nanos(u64::from(ns)))
            }
        }
        DynDelay::new(Spin)
    }
}
