//! Texas Instruments ADS1115 16-bit ADC on I2C, single-ended inputs in single-shot mode.
//!
//! Written from the datasheet SBAS444: pointer register (section 9.6.1), config register bits
//! (table 8). Each read starts one conversion per configured channel, polls `OS` until the
//! conversion is done and reads the signed 16-bit result.

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use ferry_hal::{Bus, DriverDescriptor, Quantity, Reading, Sensor, Timestamp, Unit};

mod driver;

pub use driver::{Ads1115Driver, Params};

/// The registry name of this driver.
pub const NAME: &str = "ads1115";
/// The four addresses the ADDR pin selects (GND, VDD, SDA, SCL).
pub const ADDRESSES: [u8; 4] = [0x48, 0x49, 0x4A, 0x4B];

mod reg {
    pub const CONVERSION: u8 = 0x00;
    pub const CONFIG: u8 = 0x01;
}

mod bits {
    /// Write: start a single conversion. Read: 1 when no conversion is in progress.
    pub const OS: u16 = 1 << 15;
    /// MUX[14:12] = 1xx: AINx against GND.
    pub const MUX_SINGLE_ENDED: u16 = 0b100 << 12;
    pub const PGA_SHIFT: u16 = 9;
    /// MODE = 1: single-shot / power-down.
    pub const MODE_SINGLE_SHOT: u16 = 1 << 8;
    /// DR[7:5] = 100: 128 samples per second (the default).
    pub const DR_128SPS: u16 = 0b100 << 5;
    /// COMP_QUE[1:0] = 11: comparator disabled.
    pub const COMP_QUE_DISABLE: u16 = 0b11;
}

/// Conversion time at 128 SPS is 7.8 ms; wait a little longer before the first poll.
const CONVERSION_WAIT_US: u32 = 8_000;
/// Polls of `OS` before giving up on a conversion.
const MAX_POLLS: u8 = 5;

/// Programmable-gain amplifier full-scale range (PGA[11:9]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullScale {
    /// ±6.144 V (000).
    V6_144,
    /// ±4.096 V (001).
    V4_096,
    /// ±2.048 V (010, the default).
    V2_048,
    /// ±1.024 V (011).
    V1_024,
    /// ±0.512 V (100).
    V0_512,
    /// ±0.256 V (101).
    V0_256,
}

impl FullScale {
    /// Every range with its volts, for config parsing.
    pub const ALL: [(FullScale, f64); 6] = [
        (FullScale::V6_144, 6.144),
        (FullScale::V4_096, 4.096),
        (FullScale::V2_048, 2.048),
        (FullScale::V1_024, 1.024),
        (FullScale::V0_512, 0.512),
        (FullScale::V0_256, 0.256),
    ];

    const fn bits(self) -> u16 {
        self as u16
    }

    /// The full-scale voltage.
    pub fn volts(self) -> f64 {
        FullScale::ALL[self as usize].1
    }
}

/// What can go wrong talking to an ADS1115.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The bus failed.
    Bus(E),
    /// A conversion did not finish in time.
    Timeout,
    /// A channel number above 3.
    BadChannel(u8),
}

impl<E: core::fmt::Debug> core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "i2c: {e:?}"),
            Error::Timeout => f.write_str("conversion did not complete"),
            Error::BadChannel(c) => write!(f, "channel {c} does not exist (0..=3)"),
        }
    }
}

/// The channel labels, so that readings never format at run time.
const LABELS: [&str; 4] = ["ain0", "ain1", "ain2", "ain3"];

/// An ADS1115 reading some of its four single-ended inputs.
pub struct Ads1115<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
    range: FullScale,
    channels: heapless::Vec<u8, 4>,
    descriptor: DriverDescriptor,
}

impl<I2C: I2c, D: DelayNs> Ads1115<I2C, D> {
    /// A driver for `channels` (each 0..=3) at `range`. Touches the bus only on read.
    pub fn new(
        i2c: I2C,
        delay: D,
        bus: u8,
        address: u8,
        range: FullScale,
        channels: &[u8],
    ) -> Result<Self, Error<I2C::Error>> {
        let mut list = heapless::Vec::new();
        for &c in channels {
            if c > 3 {
                return Err(Error::BadChannel(c));
            }
            if !list.contains(&c) {
                let _ = list.push(c); // at most 4 distinct channels 0..=3
            }
        }
        Ok(Ads1115 {
            i2c,
            delay,
            address,
            range,
            channels: list,
            descriptor: DriverDescriptor::new(NAME, Bus::I2c { bus, address }, &[Quantity::Voltage]),
        })
    }

    /// The config word that starts a single-shot conversion of `channel`.
    pub fn config_word(&self, channel: u8) -> u16 {
        bits::OS
            | bits::MUX_SINGLE_ENDED
            | (u16::from(channel & 0b11) << 12)
            | (self.range.bits() << bits::PGA_SHIFT)
            | bits::MODE_SINGLE_SHOT
            | bits::DR_128SPS
            | bits::COMP_QUE_DISABLE
    }

    /// Converts `channel` once and returns the signed 16-bit code.
    pub fn read_code(&mut self, channel: u8) -> Result<i16, Error<I2C::Error>> {
        if channel > 3 {
            return Err(Error::BadChannel(channel));
        }
        let [hi, lo] = self.config_word(channel).to_be_bytes();
        self.i2c.write(self.address, &[reg::CONFIG, hi, lo]).map_err(Error::Bus)?;
        let mut done = false;
        for _ in 0..MAX_POLLS {
            self.delay.delay_us(CONVERSION_WAIT_US);
            let mut cfg = [0u8; 2];
            self.i2c.write_read(self.address, &[reg::CONFIG], &mut cfg).map_err(Error::Bus)?;
            if u16::from_be_bytes(cfg) & bits::OS != 0 {
                done = true;
                break;
            }
        }
        if !done {
            return Err(Error::Timeout);
        }
        let mut v = [0u8; 2];
        self.i2c.write_read(self.address, &[reg::CONVERSION], &mut v).map_err(Error::Bus)?;
        Ok(i16::from_be_bytes(v))
    }

    /// Converts a code to volts at the configured range.
    pub fn volts(&self, code: i16) -> f64 {
        f64::from(code) * self.range.volts() / 32_768.0
    }

    /// Hands the bus and delay back.
    pub fn destroy(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }
}

impl<I2C: I2c, D: DelayNs> Sensor for Ads1115<I2C, D> {
    type Error = Error<I2C::Error>;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    fn read(&mut self, now: Timestamp) -> Result<Reading, Self::Error> {
        let mut r = Reading::new(now);
        for i in 0..self.channels.len() {
            let c = self.channels[i];
            let code = self.read_code(c)?;
            r.push(Quantity::Voltage, LABELS[usize::from(c)], self.volts(code), Unit::Volt);
        }
        Ok(r)
    }
}
