//! Microchip MCP3008 8-channel 10-bit ADC on SPI.
//!
//! Written from the datasheet DS21295: one conversion is a 3-byte full-duplex frame (section
//! 6.1, figure 6-1): the start bit, then SGL/DIFF and D2..D0, then a byte of clocks; the result
//! is the low 2 bits of the second byte received and the whole third byte.

use embedded_hal::spi::SpiDevice;
use ferry_hal::{Bus, DriverDescriptor, Quantity, Reading, Sensor, Timestamp, Unit};

mod driver;

pub use driver::{Mcp3008Driver, Params};

/// The registry name of this driver.
pub const NAME: &str = "mcp3008";
/// The start bit, alone in the first byte so the result is byte-aligned.
const START: u8 = 0x01;
/// SGL/DIFF = 1: single-ended.
const SINGLE_ENDED: u8 = 0x80;
/// The ADC's full-scale code + 1.
const CODES: f64 = 1024.0;

const LABELS: [&str; 8] = ["ch0", "ch1", "ch2", "ch3", "ch4", "ch5", "ch6", "ch7"];

/// What can go wrong talking to an MCP3008.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The bus failed.
    Spi(E),
    /// A channel number above 7.
    BadChannel(u8),
}

impl<E: core::fmt::Debug> core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Spi(e) => write!(f, "spi: {e:?}"),
            Error::BadChannel(c) => write!(f, "channel {c} does not exist (0..=7)"),
        }
    }
}

/// An MCP3008 reading some of its eight single-ended inputs against `vref`.
pub struct Mcp3008<SPI> {
    spi: SPI,
    vref: f64,
    channels: heapless::Vec<u8, 8>,
    descriptor: DriverDescriptor,
}

impl<SPI: SpiDevice> Mcp3008<SPI> {
    /// A driver for `channels` (each 0..=7) with reference voltage `vref`.
    pub fn new(
        spi: SPI,
        bus: u8,
        chip_select: u8,
        vref: f64,
        channels: &[u8],
    ) -> Result<Self, Error<SPI::Error>> {
        let mut list = heapless::Vec::new();
        for &c in channels {
            if c > 7 {
                return Err(Error::BadChannel(c));
            }
            if !list.contains(&c) {
                let _ = list.push(c); // at most 8 distinct channels 0..=7
            }
        }
        Ok(Mcp3008 {
            spi,
            vref,
            channels: list,
            descriptor: DriverDescriptor::new(
                NAME,
                Bus::Spi { bus, chip_select },
                &[Quantity::Voltage],
            ),
        })
    }

    /// Converts `channel` once and returns the 10-bit code.
    pub fn read_code(&mut self, channel: u8) -> Result<u16, Error<SPI::Error>> {
        if channel > 7 {
            return Err(Error::BadChannel(channel));
        }
        let mut frame = [START, SINGLE_ENDED | (channel << 4), 0x00];
        self.spi.transfer_in_place(&mut frame).map_err(Error::Spi)?;
        Ok((u16::from(frame[1] & 0x03) << 8) | u16::from(frame[2]))
    }

    /// Hands the bus back.
    pub fn destroy(self) -> SPI {
        self.spi
    }
}

impl<SPI: SpiDevice> Sensor for Mcp3008<SPI> {
    type Error = Error<SPI::Error>;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    fn read(&mut self, now: Timestamp) -> Result<Reading, Self::Error> {
        let mut r = Reading::new(now);
        for i in 0..self.channels.len() {
            let c = self.channels[i];
            let code = self.read_code(c)?;
            r.push(Quantity::Voltage, LABELS[usize::from(c)], f64::from(code) * self.vref / CODES, Unit::Volt);
        }
        Ok(r)
    }
}
