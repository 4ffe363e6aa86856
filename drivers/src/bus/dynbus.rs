//! Boxed embedded-hal buses with one error type, so that the registry can build any chip driver
//! over any bus implementation (linux-embedded-hal on a board, embedded-hal-mock in tests) and
//! hand the result out as one `Box<dyn DynSensor>`.

use core::fmt::{self, Write as _};

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::i2c::{self, I2c};
use embedded_hal::spi::{self, SpiDevice};

/// A bus error with its original message kept in a fixed buffer (no allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusFault(heapless::String<96>);

impl BusFault {
    fn of(e: &impl fmt::Debug) -> Self {
        let mut s = heapless::String::new();
        // A message too long for the buffer is cut; the kind of failure survives.
        let _ = write!(Trunc(&mut s), "{e:?}");
        BusFault(s)
    }
}

struct Trunc<'a, const N: usize>(&'a mut heapless::String<N>);

impl<const N: usize> fmt::Write for Trunc<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Writes `value` into a fixed-capacity string, cutting what does not fit.
pub fn truncated<const N: usize>(value: &dyn fmt::Display) -> heapless::String<N> {
    let mut s = heapless::String::new();
    let _ = write!(Trunc(&mut s), "{value}");
    s
}

impl fmt::Display for BusFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl i2c::Error for BusFault {
    fn kind(&self) -> i2c::ErrorKind {
        i2c::ErrorKind::Other
    }
}
impl spi::Error for BusFault {
    fn kind(&self) -> spi::ErrorKind {
        spi::ErrorKind::Other
    }
}
impl digital::Error for BusFault {
    fn kind(&self) -> digital::ErrorKind {
        digital::ErrorKind::Other
    }
}

/// Maps any bus implementation's error to [`BusFault`].
struct MapErr<T>(T);

/// An I2C bus of any implementation.
pub struct DynI2c(Box<dyn I2c<Error = BusFault> + Send>);
/// An SPI device of any implementation.
pub struct DynSpi(Box<dyn SpiDevice<Error = BusFault> + Send>);
/// A GPIO input of any implementation.
pub struct DynInput(Box<dyn InputPin<Error = BusFault> + Send>);
/// A GPIO output of any implementation.
pub struct DynOutput(Box<dyn OutputPin<Error = BusFault> + Send>);
/// A delay of any implementation.
pub struct DynDelay(Box<dyn DelayNs + Send>);

impl DynI2c {
    /// Boxes `bus`.
    pub fn new<T: I2c + Send + 'static>(bus: T) -> Self {
        DynI2c(Box::new(MapErr(bus)))
    }
}
impl DynSpi {
    /// Boxes `dev`.
    pub fn new<T: SpiDevice + Send + 'static>(dev: T) -> Self {
        DynSpi(Box::new(MapErr(dev)))
    }
}
impl DynInput {
    /// Boxes `pin`.
    pub fn new<T: InputPin + Send + 'static>(pin: T) -> Self {
        DynInput(Box::new(MapErr(pin)))
    }
}
impl DynOutput {
    /// Boxes `pin`.
    pub fn new<T: OutputPin + Send + 'static>(pin: T) -> Self {
        DynOutput(Box::new(MapErr(pin)))
    }
}
impl DynDelay {
    /// Boxes `delay`.
    pub fn new<T: DelayNs + Send + 'static>(delay: T) -> Self {
        DynDelay(Box::new(delay))
    }
}

impl<T: i2c::ErrorType> i2c::ErrorType for MapErr<T> {
    type Error = BusFault;
}
// Every method is forwarded, not just `transaction`: implementations (and mocks) may treat a
// plain `write_read` differently from a general transaction.
impl<T: I2c> I2c for MapErr<T> {
    fn read(&mut self, address: u8, read: &mut [u8]) -> Result<(), BusFault> {
        self.0.read(address, read).map_err(|e| BusFault::of(&e))
    }
    fn write(&mut self, address: u8, write: &[u8]) -> Result<(), BusFault> {
        self.0.write(address, write).map_err(|e| BusFault::of(&e))
    }
    fn write_read(&mut self, address: u8, write: &[u8], read: &mut [u8]) -> Result<(), BusFault> {
        self.0.write_read(address, write, read).map_err(|e| BusFault::of(&e))
    }
    fn transaction(&mut self, address: u8, ops: &mut [i2c::Operation<'_>]) -> Result<(), BusFault> {
        self.0.transaction(address, ops).map_err(|e| BusFault::of(&e))
    }
}
impl i2c::ErrorType for DynI2c {
    type Error = BusFault;
}
impl I2c for DynI2c {
    fn read(&mut self, address: u8, read: &mut [u8]) -> Result<(), BusFault> {
        self.0.read(address, read)
    }
    fn write(&mut self, address: u8, write: &[u8]) -> Result<(), BusFault> {
        self.0.write(address, write)
    }
    fn write_read(&mut self, address: u8, write: &[u8], read: &mut [u8]) -> Result<(), BusFault> {
        self.0.write_read(address, write, read)
    }
    fn transaction(&mut self, address: u8, ops: &mut [i2c::Operation<'_>]) -> Result<(), BusFault> {
        self.0.transaction(address, ops)
    }
}

impl<T: spi::ErrorType> spi::ErrorType for MapErr<T> {
    type Error = BusFault;
}
impl<T: SpiDevice> SpiDevice for MapErr<T> {
    fn transaction(&mut self, ops: &mut [spi::Operation<'_, u8>]) -> Result<(), BusFault> {
        self.0.transaction(ops).map_err(|e| BusFault::of(&e))
    }
    fn transfer_in_place(&mut self, buf: &mut [u8]) -> Result<(), BusFault> {
        self.0.transfer_in_place(buf).map_err(|e| BusFault::of(&e))
    }
}
impl spi::ErrorType for DynSpi {
    type Error = BusFault;
}
impl SpiDevice for DynSpi {
    fn transaction(&mut self, ops: &mut [spi::Operation<'_, u8>]) -> Result<(), BusFault> {
        self.0.transaction(ops)
    }
    fn transfer_in_place(&mut self, buf: &mut [u8]) -> Result<(), BusFault> {
        self.0.transfer_in_place(buf)
    }
}

impl<T: digital::ErrorType> digital::ErrorType for MapErr<T> {
    type Error = BusFault;
}
impl<T: InputPin> InputPin for MapErr<T> {
    fn is_high(&mut self) -> Result<bool, BusFault> {
        self.0.is_high().map_err(|e| BusFault::of(&e))
    }
    fn is_low(&mut self) -> Result<bool, BusFault> {
        self.0.is_low().map_err(|e| BusFault::of(&e))
    }
}
impl<T: OutputPin> OutputPin for MapErr<T> {
    fn set_low(&mut self) -> Result<(), BusFault> {
        self.0.set_low().map_err(|e| BusFault::of(&e))
    }
    fn set_high(&mut self) -> Result<(), BusFault> {
        self.0.set_high().map_err(|e| BusFault::of(&e))
    }
}
impl digital::ErrorType for DynInput {
    type Error = BusFault;
}
impl InputPin for DynInput {
    fn is_high(&mut self) -> Result<bool, BusFault> {
        self.0.is_high()
    }
    fn is_low(&mut self) -> Result<bool, BusFault> {
        self.0.is_low()
    }
}
impl digital::ErrorType for DynOutput {
    type Error = BusFault;
}
impl OutputPin for DynOutput {
    fn set_low(&mut self) -> Result<(), BusFault> {
        self.0.set_low()
    }
    fn set_high(&mut self) -> Result<(), BusFault> {
        self.0.set_high()
    }
}

impl DelayNs for DynDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.delay_ns(ns)
    }
    fn delay_us(&mut self, us: u32) {
        self.0.delay_us(us)
    }
    fn delay_ms(&mut self, ms: u32) {
        self.0.delay_ms(ms)
    }
}
