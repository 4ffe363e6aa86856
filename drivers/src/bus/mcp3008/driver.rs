//! The MCP3008 in the registry: the keys of a `driver = "mcp3008"` sensor, their validation,
//! and the build over a configured SPI device.

use crate::config::{BusKind, Errors};
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{Mcp3008, NAME};

fn default_channels() -> Vec<u8> {
    vec![0]
}
fn default_vref() -> f64 {
    3.3
}

/// The keys of a `driver = "mcp3008"` sensor.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// An `spi` bus of `[[buses]]` (one chip select: `/dev/spidevB.C`).
    pub bus: String,
    /// Single-ended inputs to read, each 0..=7. Default `[0]`.
    #[serde(default = "default_channels")]
    pub channels: Vec<u8>,
    /// Reference voltage on VREF, V (2.7..=5.5). Default 3.3.
    #[serde(default = "default_vref")]
    pub vref_v: f64,
}

/// The MCP3008 in the registry.
pub struct Mcp3008Driver;

impl Driver for Mcp3008Driver {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "Microchip MCP3008 10-bit 8-channel ADC (SPI)";
    type Params = Params;

    fn validate(p: &Params, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        ctx.bus(&format!("{key}.bus"), &p.bus, BusKind::Spi, errs);
        if p.channels.is_empty() || p.channels.iter().any(|&c| c > 7) {
            errs.push(format!("{key}.channels"), "a non-empty list of inputs 0..=7", Some(format!("{:?}", p.channels)));
        }
        errs.range(format!("{key}.vref_v"), p.vref_v, 2.7, 5.5, "a reference voltage in V");
    }

    /// An MCP3008 cannot be identified over SPI; the check is that the device exists.
    fn check(p: &Params, ctx: &Context) -> Result<(), BuildError> {
        ctx.present(ctx.bus(&p.bus)?)
    }

    fn build(p: &Params, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        let bus = ctx.bus(&p.bus)?;
        ctx.present(bus)?;
        let spi = ctx
            .provider
            .spi(&bus.device, bus.spi_speed_hz())
            .map_err(|e| BuildError::Open(format!("{}: {e}", bus.device.display())))?;
        let (b, cs) = bus.numbers();
        let adc = Mcp3008::new(spi, b, cs, p.vref_v, &p.channels).map_err(|e| BuildError::Open(e.to_string()))?;
        Ok(Box::new(adc))
    }
}
