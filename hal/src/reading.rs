//! One read of a sensor: when, and what it saw, in fixed-capacity buffers.

use core::fmt;

use crate::quantity::{Quantity, Unit};

/// The most samples one reading can carry. Large enough for an 8-core board's per-core clocks
/// and throttle flags plus a few interfaces; a probe that has more to say truncates and says so
/// through [`Reading::truncated`].
pub const MAX_SAMPLES: usize = 32;

/// The capacity of a sample label (a channel, zone, interface or rail name).
pub const LABEL_CAPACITY: usize = 16;

/// A short channel name, such as `cpu-thermal`, `eth0`, `VDD_IN` or `ain0`.
pub type Label = heapless::String<LABEL_CAPACITY>;

/// Milliseconds on the caller's monotonic clock. The HAL has no clock of its own (it runs on
/// microcontrollers too); whoever drives the sensors says what time it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the clock's origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

/// One measured value.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Sample {
    /// What was measured.
    pub quantity: Quantity,
    /// Which channel of the sensor (empty when the sensor has only one).
    pub label: Label,
    /// The value, in `unit`.
    pub value: f64,
    /// The unit of `value`.
    pub unit: Unit,
}

impl Sample {
    /// A sample with a label. A label longer than [`LABEL_CAPACITY`] is cut at a character
    /// boundary rather than refused: a name is for people, the value is what matters.
    pub fn new(quantity: Quantity, label: &str, value: f64, unit: Unit) -> Self {
        Sample { quantity, label: label_from(label), value, unit }
    }
}

/// Builds a [`Label`], cutting at a character boundary when `s` is too long.
pub fn label_from(s: &str) -> Label {
    let mut label = Label::new();
    for c in s.chars() {
        if label.push(c).is_err() {
            break;
        }
    }
    label
}

/// One read of a sensor: a timestamp and up to [`MAX_SAMPLES`] samples.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reading {
    /// When the read happened.
    pub timestamp: Timestamp,
    /// What was measured.
    pub samples: heapless::Vec<Sample, MAX_SAMPLES>,
    /// True when the sensor had more samples than fit and some were dropped.
    pub truncated: bool,
}

impl Reading {
    /// An empty reading taken at `timestamp`.
    pub const fn new(timestamp: Timestamp) -> Self {
        Reading { timestamp, samples: heapless::Vec::new(), truncated: false }
    }

    /// Appends a sample; when the reading is full the sample is dropped and the reading is
    /// marked [`truncated`](Self::truncated).
    pub fn push(&mut self, quantity: Quantity, label: &str, value: f64, unit: Unit) {
        if self.samples.push(Sample::new(quantity, label, value, unit)).is_err() {
            self.truncated = true;
        }
    }

    /// The first sample of `quantity`, if any.
    pub fn get(&self, quantity: Quantity) -> Option<&Sample> {
        self.samples.iter().find(|s| s.quantity == quantity)
    }

    /// The first sample of `quantity` on channel `label`, if any.
    pub fn get_labelled(&self, quantity: Quantity, label: &str) -> Option<&Sample> {
        self.samples.iter().find(|s| s.quantity == quantity && s.label.as_str() == label)
    }
}

impl fmt::Display for Sample {
    /// `temperature[cpu-thermal]=47.2°C`; large values get a readable prefix (MHz, MiB, hPa).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.quantity.as_str())?;
        if !self.label.is_empty() {
            write!(f, "[{}]", self.label)?;
        }
        let v = self.value;
        match self.unit {
            Unit::Hertz => write!(f, "={:.0}MHz", v / 1e6),
            Unit::Bytes => write!(f, "={:.1}MiB", v / (1024.0 * 1024.0)),
            Unit::BytesPerSecond => write!(f, "={:.1}kB/s", v / 1e3),
            Unit::Pascal => write!(f, "={:.2}hPa", v / 100.0),
            Unit::Count | Unit::Flag if v == (v as i64) as f64 => write!(f, "={v:.0}"),
            Unit::Count | Unit::Flag => write!(f, "={v:.2}"),
            Unit::Percent => write!(f, "={v:.1}%"),
            Unit::Volt | Unit::Ampere | Unit::Watt => write!(f, "={v:.3}{}", self.unit),
            Unit::Celsius => write!(f, "={v:.1}{}", self.unit),
        }
    }
}

impl fmt::Display for Reading {
    /// All samples on one line, separated by two spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.samples.iter().enumerate() {
            if i > 0 {
                f.write_str("  ")?;
            }
            write!(f, "{s}")?;
        }
        if self.truncated {
            f.write_str("  (truncated)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_reading_drops_and_marks_truncated() {
        let mut r = Reading::new(Timestamp(5));
        for i in 0..MAX_SAMPLES + 3 {
            r.push(Quantity::RawCode, "x", i as f64, Unit::Count);
        }
        assert_eq!(r.samples.len(), MAX_SAMPLES);
        assert!(r.truncated);
    }

    #[test]
    fn long_labels_are_cut_not_refused() {
        let s = Sample::new(Quantity::Power, "a-very-long-rail-name-indeed", 1.0, Unit::Watt);
        assert_eq!(s.label.as_str(), "a-very-long-rail");
    }

    #[test]
    fn samples_print_with_readable_prefixes() {
        extern crate std;
        use std::string::ToString;
        let s = Sample::new(Quantity::CpuFrequency, "cpu0", 1.5e9, Unit::Hertz);
        assert_eq!(s.to_string(), "cpu_frequency[cpu0]=1500MHz");
        let s = Sample::new(Quantity::Temperature, "", 25.08, Unit::Celsius);
        assert_eq!(s.to_string(), "temperature=25.1°C");
    }
}
