//! The board config: one TOML per board in `firmware-configs/`. Every struct here is the
//! documentation of its section: each field says what it means, its unit, its default and its
//! range; every section denies unknown keys.
//!
//! [`BoardConfig::load`] reads a file and returns the config or *all* the errors in it.

mod error;
mod load;

use std::path::PathBuf;

use ferry_hal::Precision;
use serde::Deserialize;

pub use error::{ConfigError, ConfigErrors, Errors};
// The `[thermal]`, `[energy]` and `[[targets]]` sections are the decision's own config structs,
// defined (with their defaults) once, in ferry-decide; this loader adds the board's checks.
pub use ferry_decide::config::{EdgeTarget, EnergyConfig, InferenceEnergy, LocalTarget, TargetConfig, ThermalConfig};

/// A whole board config.
#[derive(Debug, Clone)]
pub struct BoardConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[board]`: what the board is.
    pub board: BoardSection,
    /// `[[buses]]`: the buses sensors hang on.
    pub buses: Vec<BusConfig>,
    /// `[[sensors]]`: the sensors and probes to run.
    pub sensors: Vec<SensorConfig>,
    /// `[thermal]`: the zone the policy watches and its limits.
    pub thermal: ThermalConfig,
    /// `[[models]]`: the models that can run locally.
    pub models: Vec<ModelConfig>,
    /// `[energy]`: the figures the energy mode uses.
    pub energy: EnergyConfig,
    /// `[[targets]]`: where a request can run (local variants and edge endpoints).
    pub targets: Vec<TargetConfig>,
}

fn default_root() -> PathBuf {
    PathBuf::from("/")
}

/// `[board]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardSection {
    /// Board type published in the device descriptor, e.g. `rpi4`. Required.
    pub name: String,
    /// Free text for people. Default: empty.
    #[serde(default)]
    pub description: String,
    /// Where procfs and sysfs are found: `/` on a board (the default); a fixture tree in tests.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// CPU clusters as built. Default: none (the descriptor then counts cores from /proc/stat).
    #[serde(default)]
    pub cpu: Vec<CpuClusterConfig>,
    /// Memory as built, MiB (16..=1048576). Default: measured from /proc/meminfo.
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// Accelerators. Default: none.
    #[serde(default)]
    pub accelerators: Vec<AcceleratorConfig>,
}

/// `[[board.cpu]]`: a group of identical cores.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuClusterConfig {
    /// Core type, e.g. `cortex-a72`.
    pub core: String,
    /// How many (1..=256).
    pub count: u16,
    /// Highest clock, MHz (100..=6000).
    pub max_mhz: u32,
    /// Lowest clock, MHz (0..=max_mhz). Default 0: unknown.
    #[serde(default)]
    pub min_mhz: u32,
}

/// `[[board.accelerators]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorConfig {
    /// `gpu`, `npu`, `dla` or `tpu`.
    pub kind: String,
    /// Name, e.g. `maxwell-128`.
    pub name: String,
}

/// The kind of a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// I2C, `/dev/i2c-N`.
    I2c,
    /// SPI, `/dev/spidevB.C`.
    Spi,
    /// GPIO character device, `/dev/gpiochipN`.
    Gpio,
}

impl BusKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BusKind::I2c => "i2c",
            BusKind::Spi => "spi",
            BusKind::Gpio => "gpio",
        }
    }
}

/// `[[buses]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// The name sensors refer to, e.g. `i2c1`.
    pub name: String,
    /// `i2c`, `spi` or `gpio`.
    pub kind: BusKind,
    /// The Linux device: `/dev/i2c-1`, `/dev/spidev0.0`, `/dev/gpiochip0`.
    pub device: PathBuf,
    /// SPI clock, Hz (10_000..=50_000_000). Default 1 MHz. SPI only.
    #[serde(default)]
    pub max_speed_hz: Option<u32>,
}

impl BusConfig {
    /// The numbers in the device name: `/dev/i2c-1` → (1, 0), `/dev/spidev0.1` → (0, 1).
    pub fn numbers(&self) -> (u8, u8) {
        let name = self.device.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let digits: String = name.chars().skip_while(|c| !c.is_ascii_digit()).collect();
        let mut it = digits.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse::<u8>().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// The SPI clock to use.
    pub fn spi_speed_hz(&self) -> u32 {
        self.max_speed_hz.unwrap_or(1_000_000)
    }
}

/// `[[sensors]]`: the keys every sensor has; the rest belong to its driver and are checked by
/// the driver's own params struct (see each driver's `Params`).
#[derive(Debug, Clone)]
pub struct SensorConfig {
    /// Unique name, e.g. `ambient`.
    pub name: String,
    /// Registered driver name, e.g. `bme280`, `cpu`.
    pub driver: String,
    /// How often to read it, ms (10..=3_600_000). Default 1000.
    pub interval_ms: u64,
    /// Driver-specific keys, already validated against the driver's params.
    pub params: toml::Table,
    /// Its index in `[[sensors]]`, for error keys.
    pub index: usize,
}

impl SensorConfig {
    /// The key prefix of this sensor in its file, e.g. `sensors[2]`.
    pub fn key(&self) -> String {
        format!("sensors[{}]", self.index)
    }
}

/// `[[models]]`: a model that can run locally.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Model name, e.g. `digits`, `efficientnet-lite0`.
    pub name: String,
    /// Precisions available on this board (`fp32`, `int8`); at least one.
    pub precisions: Vec<Precision>,
}
