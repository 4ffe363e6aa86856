//! The ADS1115 in the registry: the keys of a `driver = "ads1115"` sensor, their validation,
//! the answer-at-the-address check, and the build over a configured I2C bus.

use embedded_hal::i2c::I2c;

use crate::config::{BusKind, Errors};
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{reg, Ads1115, FullScale, ADDRESSES, NAME};

fn default_address() -> u8 {
    ADDRESSES[0]
}
fn default_channels() -> Vec<u8> {
    vec![0]
}
fn default_full_scale() -> f64 {
    2.048
}

/// The keys of a `driver = "ads1115"` sensor.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// An `i2c` bus of `[[buses]]`.
    pub bus: String,
    /// 0x48..=0x4B (ADDR to GND, VDD, SDA, SCL). Default 0x48.
    #[serde(default = "default_address")]
    pub address: u8,
    /// Single-ended inputs to read, each 0..=3. Default `[0]`.
    #[serde(default = "default_channels")]
    pub channels: Vec<u8>,
    /// PGA full-scale range, V: 6.144, 4.096, 2.048 (default), 1.024, 0.512 or 0.256.
    #[serde(default = "default_full_scale")]
    pub full_scale_v: f64,
}

fn full_scale(v: f64) -> Option<FullScale> {
    FullScale::ALL.iter().find(|(_, x)| (x - v).abs() < 1e-9).map(|(f, _)| *f)
}

/// The ADS1115 in the registry.
pub struct Ads1115Driver;

impl Ads1115Driver {
    fn open(p: &Params, ctx: &Context) -> Result<(crate::bus::dynbus::DynI2c, u8), BuildError> {
        let bus = ctx.bus(&p.bus)?;
        ctx.present(bus)?;
        let i2c = ctx.provider.i2c(&bus.device).map_err(|e| BuildError::Open(format!("{}: {e}", bus.device.display())))?;
        Ok((i2c, bus.numbers().0))
    }
}

impl Driver for Ads1115Driver {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "TI ADS1115 16-bit ADC, single-ended inputs (I2C)";
    type Params = Params;

    fn validate(p: &Params, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        ctx.bus(&format!("{key}.bus"), &p.bus, BusKind::I2c, errs);
        if !ADDRESSES.contains(&p.address) {
            errs.push(format!("{key}.address"), "0x48, 0x49, 0x4a or 0x4b (the ADS1115's ADDR pin selects one)", Some(format!("0x{:02x}", p.address)));
        }
        if p.channels.is_empty() || p.channels.iter().any(|&c| c > 3) {
            errs.push(format!("{key}.channels"), "a non-empty list of inputs 0..=3", Some(format!("{:?}", p.channels)));
        }
        if full_scale(p.full_scale_v).is_none() {
            errs.push(format!("{key}.full_scale_v"), "one of 6.144, 4.096, 2.048, 1.024, 0.512, 0.256", Some(p.full_scale_v.to_string()));
        }
    }

    /// The ADS1115 has no id register: the check is that something acknowledges a read of the
    /// config register at the address.
    fn check(p: &Params, ctx: &Context) -> Result<(), BuildError> {
        let (mut i2c, _) = Self::open(p, ctx)?;
        let mut cfg = [0u8; 2];
        i2c.write_read(p.address, &[reg::CONFIG], &mut cfg).map_err(|e| BuildError::Mismatch {
            key: "address",
            expected: format!("an ADS1115 answering at 0x{:02x}", p.address),
            found: format!("no answer ({e})"),
        })
    }

    fn build(p: &Params, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        let (i2c, n) = Self::open(p, ctx)?;
        let range = full_scale(p.full_scale_v).unwrap_or(FullScale::V2_048);
        let adc = Ads1115::new(i2c, ctx.provider.delay(), n, p.address, range, &p.channels)
            .map_err(|e| BuildError::Open(e.to_string()))?;
        Ok(Box::new(adc))
    }
}
