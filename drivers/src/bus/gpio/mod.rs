//! Plain GPIO: an input line read as a level, and an output line that can be driven and reports
//! the level it was last set to.

use embedded_hal::digital::{InputPin, OutputPin};
use ferry_hal::{Bus, DriverDescriptor, Quantity, Reading, Sensor, Timestamp, Unit};

mod driver;

pub use driver::{GpioInputDriver, GpioOutputDriver, InputParams, OutputParams};

/// The registry name of the input driver.
pub const INPUT_NAME: &str = "gpio-input";
/// The registry name of the output driver.
pub const OUTPUT_NAME: &str = "gpio-output";

/// A pin error, printed through its `Debug` form (embedded-hal pin errors need not be `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinError<E>(pub E);

impl<E: core::fmt::Debug> core::fmt::Display for PinError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "gpio: {:?}", self.0)
    }
}

/// A GPIO input read as 0 or 1.
pub struct GpioInput<P> {
    pin: P,
    descriptor: DriverDescriptor,
}

impl<P: InputPin> GpioInput<P> {
    /// An input on `chip`:`line` (for the descriptor only).
    pub fn new(pin: P, chip: u8, line: u32) -> Self {
        GpioInput { pin, descriptor: DriverDescriptor::new(INPUT_NAME, Bus::Gpio { chip, line }, &[Quantity::Level]) }
    }

    /// Hands the pin back.
    pub fn destroy(self) -> P {
        self.pin
    }
}

impl<P: InputPin> Sensor for GpioInput<P> {
    type Error = PinError<P::Error>;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    fn read(&mut self, now: Timestamp) -> Result<Reading, Self::Error> {
        let high = self.pin.is_high().map_err(PinError)?;
        let mut r = Reading::new(now);
        r.push(Quantity::Level, "", if high { 1.0 } else { 0.0 }, Unit::Flag);
        Ok(r)
    }
}

/// A GPIO output (a fan, a relay, a status LED).
pub struct GpioOutput<P> {
    pin: P,
    high: bool,
    descriptor: DriverDescriptor,
}

impl<P: OutputPin> GpioOutput<P> {
    /// An output on `chip`:`line`, driven to `initial_high` now.
    pub fn new(mut pin: P, chip: u8, line: u32, initial_high: bool) -> Result<Self, P::Error> {
        pin.set_state(initial_high.into())?;
        Ok(GpioOutput {
            pin,
            high: initial_high,
            descriptor: DriverDescriptor::new(OUTPUT_NAME, Bus::Gpio { chip, line }, &[Quantity::Level]),
        })
    }

    /// Drives the line.
    pub fn set(&mut self, high: bool) -> Result<(), P::Error> {
        self.pin.set_state(high.into())?;
        self.high = high;
        Ok(())
    }

    /// Hands the pin back.
    pub fn destroy(self) -> P {
        self.pin
    }
}

impl<P: OutputPin> Sensor for GpioOutput<P> {
    type Error = PinError<P::Error>;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    /// Reports the level last driven; touches no bus.
    fn read(&mut self, now: Timestamp) -> Result<Reading, Self::Error> {
        let mut r = Reading::new(now);
        r.push(Quantity::Level, "", if self.high { 1.0 } else { 0.0 }, Unit::Flag);
        Ok(r)
    }
}
