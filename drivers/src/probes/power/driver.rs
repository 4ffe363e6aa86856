//! The power-rail probe in the registry: the keys of a `driver = "power"` sensor and their
//! validation.

use crate::config::Errors;
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{PowerProbe, NAME};

/// The keys of a `driver = "power"` sensor.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// hwmon chip names to read (`name` file, e.g. `ina3221`); default: all.
    #[serde(default)]
    pub chips: Vec<String>,
}

/// This probe in the registry.
pub struct PowerDriver;

impl Driver for PowerDriver {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "power rails: voltage, current, power (/sys/class/hwmon, e.g. INA3221)";
    type Params = Params;

    fn validate(p: &Params, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        for (i, v) in p.chips.iter().enumerate() {
            if v.trim().is_empty() {
                errs.push(format!("{key}.chips[{i}]"), "a non-empty name", Some("an empty string".into()));
            }
        }
        let _ = ctx;
    }

    /// Opening the files is the check: it reads nothing and starts nothing.
    fn check(p: &Params, ctx: &Context) -> Result<(), BuildError> {
        PowerProbe::open(&ctx.root, &p.chips).map(|_| ()).map_err(|e| BuildError::Open(e.to_string()))
    }

    fn build(p: &Params, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        Ok(Box::new(PowerProbe::open(&ctx.root, &p.chips).map_err(|e| BuildError::Open(e.to_string()))?))
    }
}
