//! GPIO lines in the registry: the keys of `driver = "gpio-input"` and `driver = "gpio-output"`
//! sensors, their validation, and the build on a configured GPIO chip.

use crate::config::{BusKind, Errors};
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{GpioInput, GpioOutput, INPUT_NAME, OUTPUT_NAME};

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
