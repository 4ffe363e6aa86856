//! The thermal probe in the registry: the keys of a `driver = "thermal"` sensor and their
//! validation.

use crate::config::Errors;
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{ThermalProbe, NAME};

/// The keys of a `driver = "thermal"` sensor.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Thermal zone types to read (`/sys/class/thermal/thermal_zone*/type`); default: all.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// This probe in the registry.
pub struct ThermalDriver;

impl Driver for ThermalDriver {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "SoC temperatures and trip points (/sys/class/thermal)";
    type Params = Params;

    fn validate(p: &Params, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        for (i, v) in p.zones.iter().enumerate() {
            if v.trim().is_empty() {
                errs.push(format!("{key}.zones[{i}]"), "a non-empty name", Some("an empty string".into()));
            }
        }
        let _ = ctx;
    }

    /// Opening the files is the check: it reads nothing and starts nothing.
    fn check(p: &Params, ctx: &Context) -> Result<(), BuildError> {
        ThermalProbe::open(&ctx.root, &p.zones).map(|_| ()).map_err(|e| BuildError::Open(e.to_string()))
    }

    fn build(p: &Params, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        Ok(Box::new(ThermalProbe::open(&ctx.root, &p.zones).map_err(|e| BuildError::Open(e.to_string()))?))
    }
}
