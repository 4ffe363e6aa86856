//! Drivers by name. A driver implements [`Driver`]; its family's `register_all`
//! ([`bus::register_all`](crate::bus::register_all),
//! [`probes::register_all`](crate::probes::register_all)) makes it configurable. The registry
//! validates a sensor's keys against the driver's params, checks it without starting it, and
//! builds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::driver::erase;

// These paths predate the split of the contract and the bus I/O out of this module; the agent
// and the tests still name them here.
pub use crate::bus::linux::{BusProvider, LinuxBuses};
pub use crate::driver::{BuildError, Context, Driver, DynSensor, ErasedDriver, Fault, NoParams, ValidateCtx};

/// Drivers by name.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: BTreeMap<&'static str, Arc<dyn ErasedDriver>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every driver Ferry ships.
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        crate::bus::register_all(&mut r);
        crate::probes::register_all(&mut r);
        r
    }

    /// Adds `D` under `D::NAME` (replacing a driver of that name).
    pub fn register<D: Driver>(&mut self) -> &mut Self {
        self.drivers.insert(D::NAME, erase::<D>());
        self
    }

    /// The driver named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ErasedDriver>> {
        self.drivers.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.drivers.keys().copied()
    }
}
