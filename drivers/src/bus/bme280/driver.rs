//! The BME280 in the registry: the keys of a `driver = "bme280"` sensor, their validation,
//! the chip-id check, and the build over a configured I2C bus.

use crate::config::{BusKind, Errors};
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{read_chip_id, Bme280, Error, ADDRESS_PRIMARY, ADDRESS_SECONDARY, CHIP_ID, NAME};

fn default_address() -> u8 {
    ADDRESS_PRIMARY
}

/// The keys of a `driver = "bme280"` sensor.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// An `i2c` bus of `[[buses]]`.
    pub bus: String,
    /// 0x76 (SDO to GND, the default) or 0x77 (SDO to VDDIO).
    #[serde(default = "default_address")]
    pub address: u8,
}

/// The BME280 in the registry.
pub struct Bme280Driver;

impl Bme280Driver {
    fn open(p: &Params, ctx: &Context) -> Result<(crate::bus::dynbus::DynI2c, u8), BuildError> {
        let bus = ctx.bus(&p.bus)?;
        ctx.present(bus)?;
        let i2c = ctx.provider.i2c(&bus.device).map_err(|e| BuildError::Open(format!("{}: {e}", bus.device.display())))?;
        Ok((i2c, bus.numbers().0))
    }
}

fn mismatch<E: core::fmt::Debug>(address: u8, e: Error<E>) -> BuildError {
    match e {
        Error::WrongChipId(id) => BuildError::Mismatch {
            key: "address",
            expected: format!("a BME280 at 0x{address:02x} (chip id 0x{CHIP_ID:02x} in register 0xD0)"),
            found: format!("chip id 0x{id:02x}"),
        },
        other => BuildError::Mismatch {
            key: "address",
            expected: format!("a BME280 answering at 0x{address:02x}"),
            found: format!("no answer ({other})"),
        },
    }
}

impl Driver for Bme280Driver {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "Bosch BME280 temperature, pressure, humidity (I2C)";
    type Params = Params;

    fn validate(p: &Params, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        ctx.bus(&format!("{key}.bus"), &p.bus, BusKind::I2c, errs);
        if p.address != ADDRESS_PRIMARY && p.address != ADDRESS_SECONDARY {
            errs.push(
                format!("{key}.address"),
                "0x76 or 0x77 (the BME280's SDO pin selects one)",
                Some(format!("0x{:02x}", p.address)),
            );
        }
    }

    fn check(p: &Params, ctx: &Context) -> Result<(), BuildError> {
        let (mut i2c, _) = Self::open(p, ctx)?;
        match read_chip_id(&mut i2c, p.address) {
            Ok(CHIP_ID) => Ok(()),
            Ok(id) => Err(mismatch::<()>(p.address, Error::WrongChipId(id))),
            Err(e) => Err(mismatch(p.address, e)),
        }
    }

    fn build(p: &Params, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        let (i2c, n) = Self::open(p, ctx)?;
        let mut delay = ctx.provider.delay();
        Ok(Box::new(Bme280::new(i2c, n, p.address, &mut delay).map_err(|e| mismatch(p.address, e))?))
    }
}
