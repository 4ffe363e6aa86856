//! What a sample measures and the unit its value is in.

use core::fmt;

/// A physical or system quantity a sensor reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Quantity {
    /// A temperature (ambient, SoC, thermal zone).
    Temperature,
    /// A temperature at which the kernel acts (a thermal trip point).
    TripPoint,
    /// Barometric pressure.
    Pressure,
    /// Relative humidity.
    Humidity,
    /// An electric potential (ADC input, rail voltage).
    Voltage,
    /// A current drawn on a power rail.
    Current,
    /// Power drawn on a rail.
    Power,
    /// A raw converter code, before scaling.
    RawCode,
    /// A digital pin level (0 or 1).
    Level,
    /// The share of time CPUs were busy since the previous read.
    CpuUtilization,
    /// Runnable tasks right now (`/proc/loadavg` field 4, numerator).
    RunQueue,
    /// The one-minute load average.
    LoadAverage,
    /// Total memory.
    MemoryTotal,
    /// Memory available for new work without swapping.
    MemoryAvailable,
    /// The current CPU clock.
    CpuFrequency,
    /// The highest clock the CPU may run at right now.
    CpuFrequencyLimit,
    /// 1 when the clock is capped below the hardware maximum (thermal or power throttling).
    Throttled,
    /// Bytes received per second on an interface since the previous read.
    RxRate,
    /// Bytes sent per second on an interface since the previous read.
    TxRate,
    /// Total bytes received on an interface.
    RxBytes,
    /// Total bytes sent on an interface.
    TxBytes,
}

impl Quantity {
    /// The lower-case name used in telemetry and on the console.
    pub const fn as_str(self) -> &'static str {
        match self {
            Quantity::Temperature => "temperature",
            Quantity::TripPoint => "trip_point",
            Quantity::Pressure => "pressure",
            Quantity::Humidity => "humidity",
            Quantity::Voltage => "voltage",
            Quantity::Current => "current",
            Quantity::Power => "power",
            Quantity::RawCode => "raw_code",
            Quantity::Level => "level",
            Quantity::CpuUtilization => "cpu_utilization",
            Quantity::RunQueue => "run_queue",
            Quantity::LoadAverage => "load_average",
            Quantity::MemoryTotal => "memory_total",
            Quantity::MemoryAvailable => "memory_available",
            Quantity::CpuFrequency => "cpu_frequency",
            Quantity::CpuFrequencyLimit => "cpu_frequency_limit",
            Quantity::Throttled => "throttled",
            Quantity::RxRate => "rx_rate",
            Quantity::TxRate => "tx_rate",
            Quantity::RxBytes => "rx_bytes",
            Quantity::TxBytes => "tx_bytes",
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit a sample's value is expressed in. Values are always in these base units, never
/// scaled (no kPa, no MHz), so consumers never guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Unit {
    /// Degrees Celsius.
    Celsius,
    /// Pascal.
    Pascal,
    /// Percent (0–100).
    Percent,
    /// Volt.
    Volt,
    /// Ampere.
    Ampere,
    /// Watt.
    Watt,
    /// Hertz.
    Hertz,
    /// Bytes.
    Bytes,
    /// Bytes per second.
    BytesPerSecond,
    /// A dimensionless count or code.
    Count,
    /// A boolean flag, 0 or 1.
    Flag,
}

impl Unit {
    /// The symbol printed after a value.
    pub const fn symbol(self) -> &'static str {
        match self {
            Unit::Celsius => "°C",
            Unit::Pascal => "Pa",
            Unit::Percent => "%",
            Unit::Volt => "V",
            Unit::Ampere => "A",
            Unit::Watt => "W",
            Unit::Hertz => "Hz",
            Unit::Bytes => "B",
            Unit::BytesPerSecond => "B/s",
            Unit::Count => "",
            Unit::Flag => "",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}
