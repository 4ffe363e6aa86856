//! The driver contract: what a chip or probe implements to be configurable by name. Drivers
//! depend on this module alone; the [`Registry`](crate::Registry) depends on them, not the
//! other way round.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_hal::{DriverDescriptor, Reading, Sensor, Timestamp};
use serde::de::DeserializeOwned;

use crate::bus::dynbus::truncated;
use crate::bus::linux::BusProvider;
use crate::config::{BusConfig, BusKind, Errors};

/// A run-time fault message, in a fixed buffer so that failing reads do not allocate.
pub type Fault = heapless::String<128>;

/// A built sensor of any driver, as the [`SensorSet`](crate::SensorSet) holds it.
pub trait DynSensor: Send {
    /// Which driver, where, measuring what.
    fn descriptor(&self) -> &DriverDescriptor;
    /// One read.
    fn read(&mut self, now: Timestamp) -> Result<Reading, Fault>;
}

impl<S: Sensor + Send> DynSensor for S {
    fn descriptor(&self) -> &DriverDescriptor {
        Sensor::descriptor(self)
    }
    fn read(&mut self, now: Timestamp) -> Result<Reading, Fault> {
        Sensor::read(self, now).map_err(|e| truncated(&e))
    }
}

/// What validation of a sensor's keys may look at.
pub struct ValidateCtx<'a> {
    /// The config's `[[buses]]`.
    pub buses: &'a [BusConfig],
}

impl ValidateCtx<'_> {
    /// Checks that `bus` names a configured bus of `kind`, recording an error at `key` if not.
    pub fn bus(&self, key: &str, bus: &str, kind: BusKind, errs: &mut Errors) {
        match self.buses.iter().find(|b| b.name == bus) {
            Some(b) if b.kind == kind => {}
            Some(b) => errs.push(key, format!("a {} bus", kind.as_str()), Some(format!("`{bus}`, a {} bus", b.kind.as_str()))),
            None => errs.push(
                key,
                format!(
                    "a bus of [[buses]] ({})",
                    self.buses.iter().filter(|b| b.kind == kind).map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
                Some(format!("`{bus}`, which is not declared")),
            ),
        }
    }
}

/// What checking and building a sensor may use.
#[derive(Clone)]
pub struct Context {
    /// Where procfs and sysfs are (`/` on a board).
    pub root: PathBuf,
    /// The config's `[[buses]]`.
    pub buses: Arc<[BusConfig]>,
    /// How to open buses.
    pub provider: Arc<dyn BusProvider>,
}

impl Context {
    /// The configured bus named `name` (validation made sure it exists).
    pub fn bus(&self, name: &str) -> Result<&BusConfig, BuildError> {
        self.buses.iter().find(|b| b.name == name).ok_or_else(|| BuildError::Open(format!("bus `{name}` is not declared")))
    }

    /// The bus's device, or [`BuildError::Absent`] when it does not exist on this machine.
    pub fn present(&self, bus: &BusConfig) -> Result<(), BuildError> {
        if self.provider.exists(&bus.device) {
            Ok(())
        } else {
            Err(BuildError::Absent { bus: bus.name.clone(), device: bus.device.clone() })
        }
    }
}

/// A sensor could not be built (or checked).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// Its bus device does not exist here: a warning in `ferry check`.
    #[error("bus `{bus}`: device {} is absent", .device.display())]
    Absent {
        /// The bus name.
        bus: String,
        /// The device path.
        device: PathBuf,
    },
    /// Opening a device or a file failed: a warning in `ferry check`.
    #[error("{0}")]
    Open(String),
    /// A chip answered but is not what the config says, or did not answer at the address:
    /// a config error at `key` (relative to the sensor, e.g. `address`).
    #[error("`{key}`: expected {expected}, found {found}")]
    Mismatch {
        /// The sensor key at fault.
        key: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
}

/// A driver: its name, its params, how to check and how to build an instance.
pub trait Driver: 'static {
    /// The name configs use (`driver = "bme280"`).
    const NAME: &'static str;
    /// One line for `ferry check` and the docs.
    const SUMMARY: &'static str;
    /// The driver's own keys in `[[sensors]]`: a serde struct with `deny_unknown_fields`.
    type Params: DeserializeOwned;

    /// Range and cross-reference checks of the params; `key` is the sensor's prefix.
    fn validate(params: &Self::Params, key: &str, ctx: &ValidateCtx, errs: &mut Errors);

    /// Everything short of starting: is the device there, does the chip answer as expected.
    /// The default opens nothing and returns `Ok`.
    fn check(params: &Self::Params, ctx: &Context) -> Result<(), BuildError> {
        let _ = (params, ctx);
        Ok(())
    }

    /// Builds a running instance.
    fn build(params: &Self::Params, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError>;
}

/// Params of drivers that take none (most system probes).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// A driver behind a vtable, with its params still as TOML.
pub trait ErasedDriver: Send + Sync {
    /// The driver's name.
    fn name(&self) -> &'static str;
    /// Its summary.
    fn summary(&self) -> &'static str;
    /// Parses and validates the params, recording errors under `key`.
    fn validate(&self, params: &toml::Table, key: &str, ctx: &ValidateCtx, errs: &mut Errors);
    /// See [`Driver::check`].
    fn check(&self, params: &toml::Table, ctx: &Context) -> Result<(), BuildError>;
    /// See [`Driver::build`].
    fn build(&self, params: &toml::Table, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError>;
}

/// `D` behind a vtable, so that drivers with different `Params` share one map.
pub(crate) fn erase<D: Driver>() -> Arc<dyn ErasedDriver> {
    Arc::new(Erased::<D>(PhantomData))
}

struct Erased<D>(PhantomData<fn() -> D>);

impl<D: Driver> Erased<D> {
    fn params(params: &toml::Table) -> Result<D::Params, BuildError> {
        toml::Value::Table(params.clone()).try_into().map_err(|e: toml::de::Error| BuildError::Open(e.to_string()))
    }
}

impl<D: Driver> ErasedDriver for Erased<D> {
    fn name(&self) -> &'static str {
        D::NAME
    }
    fn summary(&self) -> &'static str {
        D::SUMMARY
    }
    fn validate(&self, params: &toml::Table, key: &str, ctx: &ValidateCtx, errs: &mut Errors) {
        if let Some(p) = errs.parse::<D::Params>(key, toml::Value::Table(params.clone())) {
            D::validate(&p, key, ctx, errs);
        }
    }
    fn check(&self, params: &toml::Table, ctx: &Context) -> Result<(), BuildError> {
        D::check(&Self::params(params)?, ctx)
    }
    fn build(&self, params: &toml::Table, ctx: &Context) -> Result<Box<dyn DynSensor>, BuildError> {
        D::build(&Self::params(params)?, ctx)
    }
}
