//! Drivers by name. Each driver module implements [`Driver`] next to its chip code; one line
//! in [`Registry::builtin`] makes it configurable. The registry validates a sensor's keys
//! against the driver's params, checks it without starting it, and builds it.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_hal::{DriverDescriptor, Reading, Sensor, Timestamp};
use serde::de::DeserializeOwned;

use crate::bus::dynbus::{truncated, DynDelay, DynI2c, DynInput, DynOutput, DynSpi};
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

/// Opens buses. [`LinuxBuses`] opens the real devices; tests pass mocks.
pub trait BusProvider: Send + Sync {
    /// Whether `device` exists (absent devices are warnings in `ferry check`).
    fn exists(&self, device: &Path) -> bool {
        device.exists()
    }
    /// Opens an I2C bus such as `/dev/i2c-1`.
    fn i2c(&self, device: &Path) -> Result<DynI2c, String>;
    /// Opens an SPI device such as `/dev/spidev0.0` at `speed_hz`, mode 0.
    fn spi(&self, device: &Path, speed_hz: u32) -> Result<DynSpi, String>;
    /// Requests `line` of GPIO chip `chip` as an input.
    fn gpio_input(&self, chip: &Path, line: u32) -> Result<DynInput, String>;
    /// Requests `line` of GPIO chip `chip` as an output at `high`.
    fn gpio_output(&self, chip: &Path, line: u32, high: bool) -> Result<DynOutput, String>;
    /// A delay.
    fn delay(&self) -> DynDelay;
}

/// The buses of the Linux board Ferry runs on, through linux-embedded-hal.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxBuses;

#[cfg(target_os = "linux")]
impl BusProvider for LinuxBuses {
    fn i2c(&self, device: &Path) -> Result<DynI2c, String> {
        linux_embedded_hal::I2cdev::new(device).map(DynI2c::new).map_err(|e| e.to_string())
    }
    fn spi(&self, device: &Path, speed_hz: u32) -> Result<DynSpi, String> {
        use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
        let mut dev = linux_embedded_hal::SpidevDevice::open(device).map_err(|e| e.to_string())?;
        let opts = SpidevOptions::new().bits_per_word(8).max_speed_hz(speed_hz).mode(SpiModeFlags::SPI_MODE_0).build();
        dev.configure(&opts).map_err(|e| e.to_string())?;
        Ok(DynSpi::new(dev))
    }
    fn gpio_input(&self, chip: &Path, line: u32) -> Result<DynInput, String> {
        use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
        let mut c = Chip::new(chip).map_err(|e| e.to_string())?;
        let h = c.get_line(line).and_then(|l| l.request(LineRequestFlags::INPUT, 0, "ferry")).map_err(|e| e.to_string())?;
        linux_embedded_hal::CdevPin::new(h).map(DynInput::new).map_err(|e| e.to_string())
    }
    fn gpio_output(&self, chip: &Path, line: u32, high: bool) -> Result<DynOutput, String> {
        use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
        let mut c = Chip::new(chip).map_err(|e| e.to_string())?;
        let h = c
            .get_line(line)
            .and_then(|l| l.request(LineRequestFlags::OUTPUT, u8::from(high), "ferry"))
            .map_err(|e| e.to_string())?;
        linux_embedded_hal::CdevPin::new(h).map(DynOutput::new).map_err(|e| e.to_string())
    }
    fn delay(&self) -> DynDelay {
        DynDelay::new(linux_embedded_hal::Delay)
    }
}

#[cfg(not(target_os = "linux"))]
impl BusProvider for LinuxBuses {
    fn i2c(&self, _: &Path) -> Result<DynI2c, String> {
        Err("I2C needs Linux".into())
    }
    fn spi(&self, _: &Path, _: u32) -> Result<DynSpi, String> {
        Err("SPI needs Linux".into())
    }
    fn gpio_input(&self, _: &Path, _: u32) -> Result<DynInput, String> {
        Err("GPIO needs Linux".into())
    }
    fn gpio_output(&self, _: &Path, _: u32, _: bool) -> Result<DynOutput, String> {
        Err("GPIO needs Linux".into())
    }
    fn delay(&self) -> DynDelay {
        struct Spin;
        impl embedded_hal::delay::DelayNs for Spin {
            fn delay_ns(&mut self, ns: u32) {
                std::thread::sleep(std::time::Duration::from_nanos(u64::from(ns)))
            }
        }
        DynDelay::new(Spin)
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
#[derive(Debug, Clone, PartialEq)]
pub enum BuildError {
    /// Its bus device does not exist here: a warning in `ferry check`.
    Absent {
        /// The bus name.
        bus: String,
        /// The device path.
        device: PathBuf,
    },
    /// Opening a device or a file failed: a warning in `ferry check`.
    Open(String),
    /// A chip answered but is not what the config says, or did not answer at the address:
    /// a config error at `key` (relative to the sensor, e.g. `address`).
    Mismatch {
        /// The sensor key at fault.
        key: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Absent { bus, device } => write!(f, "bus `{bus}`: device {} is absent", device.display()),
            BuildError::Open(m) => f.write_str(m),
            BuildError::Mismatch { key, expected, found } => write!(f, "`{key}`: expected {expected}, found {found}"),
        }
    }
}

impl std::error::Error for BuildError {}

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

    /// Every driver Ferry ships. Adding a driver: write its module, add one line here.
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        r.register::<crate::bus::bme280::Bme280Driver>();
        r.register::<crate::bus::ads1115::Ads1115Driver>();
        r.register::<crate::bus::mcp3008::Mcp3008Driver>();
        r.register::<crate::bus::gpio::GpioInputDriver>();
        r.register::<crate::bus::gpio::GpioOutputDriver>();
        r.register::<crate::probes::cpu::CpuDriver>();
        r.register::<crate::probes::memory::MemoryDriver>();
        r.register::<crate::probes::thermal::ThermalDriver>();
        r.register::<crate::probes::cpufreq::CpuFreqDriver>();
        r.register::<crate::probes::net::NetDriver>();
        r.register::<crate::probes::power::PowerDriver>();
        r
    }

    /// Adds `D` under `D::NAME` (replacing a driver of that name).
    pub fn register<D: Driver>(&mut self) -> &mut Self {
        self.drivers.insert(D::NAME, Arc::new(Erased::<D>(PhantomData)));
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

/// Params of drivers that take none (most system probes).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}
