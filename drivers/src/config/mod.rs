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

/// `[thermal]`: the zone the policy watches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalConfig {
    /// Thermal zone `type` to watch (`/sys/class/thermal/thermal_zone*/type`), e.g. `cpu-thermal`.
    pub zone: String,
    /// Where the SoC starts to throttle, °C (40..=125).
    pub throttle_point_c: f64,
    /// Where the policy starts to offload to stay cool, °C (30..=125, below the throttle point).
    pub set_point_c: f64,
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

/// `[energy]`: the figures the energy mode compares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyConfig {
    /// Radio energy per byte sent or received, nJ (0..=1_000_000).
    pub radio_nj_per_byte: f64,
    /// Energy of waking the radio and its tail per offload, mJ (0..=10_000). Default 0.
    #[serde(default)]
    pub radio_tail_mj: f64,
    /// Board idle power, mW (0..=100_000). Default 0 (unknown).
    #[serde(default)]
    pub idle_mw: f64,
    /// Energy of one local inference per model and precision.
    #[serde(default)]
    pub inference: Vec<InferenceEnergy>,
}

/// `[[energy.inference]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceEnergy {
    /// A model of `[[models]]`.
    pub model: String,
    /// One of that model's precisions.
    pub precision: Precision,
    /// Energy of one inference, mJ (more than 0, at most 100_000).
    pub mj_per_inference: f64,
}

fn default_memory_ratio() -> f64 {
    0.9
}
fn default_timeout_ms() -> u32 {
    2_000
}
fn default_inflight() -> u16 {
    8
}

/// `[[targets]]`: where a request can run, tagged by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetConfig {
    /// Run on this board (`kind = "local"`).
    Local(LocalTarget),
    /// Offload to an edge server (`kind = "edge"`).
    Edge(EdgeTarget),
}

impl TargetConfig {
    /// The target's name.
    pub fn name(&self) -> &str {
        match self {
            TargetConfig::Local(t) => &t.name,
            TargetConfig::Edge(t) => &t.name,
        }
    }
}

/// A local model variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalTarget {
    /// Unique target name, e.g. `local-int8`.
    pub name: String,
    /// A model of `[[models]]`.
    pub model: String,
    /// One of that model's precisions.
    pub precision: Precision,
    /// Lower runs first when costs tie (0..=100). Default 0.
    #[serde(default)]
    pub priority: u8,
    /// Do not run here when memory in use exceeds this share of total (0 < r <= 1). Default 0.9.
    #[serde(default = "default_memory_ratio")]
    pub max_memory_ratio: f64,
}

/// An edge endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeTarget {
    /// Unique target name, e.g. `edge-lab`.
    pub name: String,
    /// `mqtts://host:port` or `coaps://host:port` (`mqtt://`, `coap://` for tests).
    pub endpoint: String,
    /// Models it serves; default: every model of `[[models]]`.
    #[serde(default)]
    pub models: Vec<String>,
    /// Lower runs first when costs tie (0..=100). Default 0.
    #[serde(default)]
    pub priority: u8,
    /// Give up on an answer after this long, ms (10..=600_000). Default 2000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
    /// Requests in flight at once (1..=1024). Default 8.
    #[serde(default = "default_inflight")]
    pub max_inflight: u16,
}
