//! The CPU frequency probe in the registry (`driver = "cpufreq"`, no keys).

use crate::config::Errors;
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{CpuFreqProbe, NAME};

/// This probe in the registry.
pub struct CpuFreqDriver;

impl Driver for CpuFreqDriver {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "CPU clocks and throttling (/sys/devices/system/cpu/*/cpufreq)";
    type Params = crate::driver::NoParams;

    fn validate(_p: &crate::driver::NoParams, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        let _ = (key, ctx, errs);
    }

    /// Opening the files is the check: it reads nothing and starts nothing.
    fn check(_p: &crate::driver::NoParams, ctx: &Context) -> Result<(), BuildError> {
        CpuFreqProbe::open(&ctx.root).map(|_| ()).map_err(|e| BuildError::Open(e.to_string()))
    }

    fn build(_p: &crate::driver::NoParams, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        Ok(Box::new(CpuFreqProbe::open(&ctx.root).map_err(|e| BuildError::Open(e.to_string()))?))
    }
}
