//! Plain GPIO: an input line read as a level, and an output line that can be driven and reports
//! the level it was last set to.

use embedded_hal::digital::{InputPin, OutputPin};
use ferry_hal::{Bus, DriverDescriptor, Quantity, Reading, Sensor, Timestamp, Unit};

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

// ---- registry glue ----

use crate::config::{BusKind, Errors};
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

/// The keys of a `driver = "gpio-input"` sensor.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputParams {
    /// A `gpio` bus of `[[buses]]` (`/dev/gpiochipN`).
    pub bus: String,
    /// Line offset on the chip (0..=1023).
    pub line: u32,
}

/// The keys of a `driver = "gpio-output"` sensor.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputParams {
    /// A `gpio` bus of `[[buses]]` (`/dev/gpiochipN`).
    pub bus: String,
    /// Line offset on the chip (0..=1023).
    pub line: u32,
    /// Level driven at start-up. Default false (low).
    #[serde(default)]
    pub initial_high: bool,
}

/// GPIO input in the registry.
pub struct GpioInputDriver;
/// GPIO output in the registry.
pub struct GpioOutputDriver;

fn validate_line(bus: &str, line: u32, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
    ctx.bus(&format!("{key}.bus"), bus, BusKind::Gpio, errs);
    errs.range(format!("{key}.line"), line, 0, 1023, "a GPIO line offset");
}

fn gpio_open_err(bus: &crate::config::BusConfig) -> impl FnOnce(String) -> BuildError + '_ {
    move |e| BuildError::Open(format!("{}: {e}", bus.device.display()))
}

impl Driver for GpioInputDriver {
    const NAME: &'static str = INPUT_NAME;
    const SUMMARY: &'static str = "a GPIO input line read as 0/1 (GPIO character device)";
    type Params = InputParams;

    fn validate(p: &InputParams, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        validate_line(&p.bus, p.line, key, ctx, errs);
    }

    fn check(p: &InputParams, ctx: &Context) -> Result<(), BuildError> {
        ctx.present(ctx.bus(&p.bus)?)
    }

    fn build(p: &InputParams, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        let bus = ctx.bus(&p.bus)?;
        ctx.present(bus)?;
        let pin = ctx.provider.gpio_input(&bus.device, p.line).map_err(gpio_open_err(bus))?;
        Ok(Box::new(GpioInput::new(pin, bus.numbers().0, p.line)))
    }
}

impl Driver for GpioOutputDriver {
    const NAME: &'static str = OUTPUT_NAME;
    const SUMMARY: &'static str = "a GPIO output line (fan, relay, LED), reports its level";
    type Params = OutputParams;

    fn validate(p: &OutputParams, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        validate_line(&p.bus, p.line, key, ctx, errs);
    }

    fn check(p: &OutputParams, ctx: &Context) -> Result<(), BuildError> {
        ctx.present(ctx.bus(&p.bus)?)
    }

    fn build(p: &OutputParams, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        let bus = ctx.bus(&p.bus)?;
        ctx.present(bus)?;
        let pin = ctx.provider.gpio_output(&bus.device, p.line, p.initial_high).map_err(gpio_open_err(bus))?;
        let out = GpioOutput::new(pin, bus.numbers().0, p.line, p.initial_high).map_err(|e| BuildError::Open(format!("{e:?}")))?;
        Ok(Box::new(out))
    }
}
