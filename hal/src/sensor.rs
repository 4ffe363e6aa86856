//! The `Sensor` trait and the descriptor of a driver instance.

use core::fmt;

use crate::quantity::Quantity;
use crate::reading::{Reading, Timestamp};

/// The most distinct quantities one driver declares.
pub const MAX_QUANTITIES: usize = 12;

/// Where a driver instance is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case", tag = "kind"))]
pub enum Bus {
    /// An I2C bus number and a 7-bit device address.
    I2c {
        /// Bus number (`/dev/i2c-N` on Linux).
        bus: u8,
        /// 7-bit address.
        address: u8,
    },
    /// An SPI bus and chip select (`/dev/spidevB.C` on Linux).
    Spi {
        /// Bus number.
        bus: u8,
        /// Chip-select line.
        chip_select: u8,
    },
    /// A GPIO line on a GPIO chip (`/dev/gpiochipN` on Linux).
    Gpio {
        /// Chip number.
        chip: u8,
        /// Line offset on the chip.
        line: u32,
    },
    /// A Linux system probe reading procfs/sysfs: no bus.
    System,
}

impl fmt::Display for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Bus::I2c { bus, address } => write!(f, "i2c-{bus}@0x{address:02x}"),
            Bus::Spi { bus, chip_select } => write!(f, "spi{bus}.{chip_select}"),
            Bus::Gpio { chip, line } => write!(f, "gpiochip{chip}:{line}"),
            Bus::System => f.write_str("system"),
        }
    }
}

/// What a driver instance is: which driver, on which bus, measuring what.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DriverDescriptor {
    /// The driver's registry name (`bme280`, `cpu`, ...).
    pub driver: &'static str,
    /// Where the instance is attached.
    pub bus: Bus,
    /// The quantities its readings carry.
    pub quantities: heapless::Vec<Quantity, MAX_QUANTITIES>,
}

impl DriverDescriptor {
    /// A descriptor; quantities past [`MAX_QUANTITIES`] are ignored.
    pub fn new(driver: &'static str, bus: Bus, quantities: &[Quantity]) -> Self {
        let mut q = heapless::Vec::new();
        for &x in quantities.iter().take(MAX_QUANTITIES) {
            // Cannot fail: `take` bounds the count.
            let _ = q.push(x);
        }
        DriverDescriptor { driver, bus, quantities: q }
    }
}

/// A thing that can be read. Drivers for chips are generic over embedded-hal buses and implement
/// this; so do the Linux system probes. `read` must not allocate: a reading is a fixed-capacity
/// value, and the agent reads every sensor on every sweep.
pub trait Sensor {
    /// What went wrong on a read (a bus error, a missing file, a chip not answering).
    type Error: fmt::Debug + fmt::Display;

    /// Which driver this is, where, and what it measures.
    fn descriptor(&self) -> &DriverDescriptor;

    /// Reads every quantity once. `now` is the caller's monotonic clock; rate probes (network)
    /// divide by the time between reads.
    fn read(&mut self, now: Timestamp) -> Result<Reading, Self::Error>;
}
