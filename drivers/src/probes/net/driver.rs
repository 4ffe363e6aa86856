//! The network probe in the registry: the keys of a `driver = "net"` sensor and their
//! validation.

use crate::config::Errors;
use crate::driver::{BuildError, Context, Driver, DynSensor, ValidateCtx};

use super::{NetProbe, NAME};

/// The keys of a `driver = "net"` sensor.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Interfaces to read; default: all but `lo`.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

/// This probe in the registry.
pub struct NetDriver;

impl Driver for NetDriver {
    const NAME: &'static str = NAME;
    const SUMMARY: &'static str = "network throughput (/sys/class/net/*/statistics)";
    type Params = Params;

    fn validate(p: &Params, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        for (i, v) in p.interfaces.iter().enumerate() {
            if v.trim().is_empty() {
                errs.push(format!("{key}.interfaces[{i}]"), "a non-empty name", Some("an empty string".into()));
            }
        }
        let _ = ctx;
    }

    /// Opening the files is the check: it reads nothing and starts nothing.
    fn check(p: &Params, ctx: &Context) -> Result<(), BuildError> {
        NetProbe::open(&ctx.root, &p.interfaces).map(|_| ()).map_err(|e| BuildError::Open(e.to_string()))
    }

    fn build(p: &Params, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        Ok(Box::new(NetProbe::open(&ctx.root, &p.interfaces).map_err(|e| BuildError::Open(e.to_string()))?))
    }
}
