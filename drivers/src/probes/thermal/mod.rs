//! SoC temperatures and trip points from `/sys/class/thermal/thermal_zone*`.

use std::path::Path;

use ferry_hal::reading::label_from;
use ferry_hal::{Bus, DriverDescriptor, Label, Quantity, Reading, Sensor, Timestamp, Unit};

use super::file::{numbered_entries, read_trimmed, SysFile};
use super::parse::i64_of;
use super::{io_err, OpenError, ProbeError};

mod driver;

pub use driver::{Params, ThermalDriver};

/// The registry name of this probe.
pub const NAME: &str = "thermal";

/// A trip point of a zone, read once at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct TripPoint {
    /// `passive`, `active`, `hot` or `critical`.
    pub kind: String,
    /// Temperature, °C.
    pub celsius: f64,
}

/// One thermal zone.
#[derive(Debug)]
pub struct Zone {
    /// The zone's `type` (e.g. `cpu-thermal`, `CPU-therm`).
    pub name: String,
    label: Label,
    temp: SysFile,
    /// Its trip points.
    pub trips: Vec<TripPoint>,
    /// The lowest passive (throttling) trip, else the lowest trip of any kind.
    pub throttle_c: Option<f64>,
}

/// Reads every thermal zone (or the named ones).
pub struct ThermalProbe {
    zones: Vec<Zone>,
    buf: [u8; 32],
    descriptor: DriverDescriptor,
}

impl ThermalProbe {
    /// Opens the zones under `root/sys/class/thermal`; `only` keeps zones whose type is listed.
    pub fn open(root: &Path, only: &[String]) -> Result<Self, OpenError> {
        let dir = root.join("sys/class/thermal");
        let mut zones = Vec::new();
        for (_, path) in numbered_entries(&dir, "thermal_zone").map_err(OpenError::io(&dir))? {
            let Ok(name) = read_trimmed(path.join("type")) else { continue };
            if !only.is_empty() && !only.iter().any(|z| z == &name) {
                continue;
            }
            let Ok(temp) = SysFile::open(path.join("temp")) else { continue };
            let mut trips = Vec::new();
            for i in 0.. {
                let (Ok(kind), Ok(t)) = (
                    read_trimmed(path.join(format!("trip_point_{i}_type"))),
                    read_trimmed(path.join(format!("trip_point_{i}_temp"))),
                ) else {
                    break;
                };
                if let Some(milli) = i64_of(t.as_bytes()) {
                    trips.push(TripPoint { kind, celsius: milli as f64 / 1000.0 });
                }
            }
            let lowest = |pred: &dyn Fn(&TripPoint) -> bool| {
                trips.iter().filter(|t| pred(t)).map(|t| t.celsius).fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))))
            };
            let throttle_c = lowest(&|t| t.kind == "passive").or_else(|| lowest(&|_| true));
            zones.push(Zone { label: label_from(&name), name, temp, trips, throttle_c });
        }
        if zones.is_empty() {
            return Err(OpenError::Nothing(format!("no thermal zones under {}", dir.display())));
        }
        Ok(ThermalProbe {
            zones,
            buf: [0; 32],
            descriptor: DriverDescriptor::new(NAME, Bus::System, &[Quantity::Temperature, Quantity::TripPoint]),
        })
    }

    /// The zones found at start-up.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
}

impl Sensor for ThermalProbe {
    type Error = ProbeError;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    /// One temperature per zone, then each zone's throttle trip point. A zone whose sensor
    /// fails (some report EINVAL while powered down) is left out; the read fails only if all do.
    fn read(&mut self, now: Timestamp) -> Result<Reading, ProbeError> {
        let mut r = Reading::new(now);
        let mut last_err = None;
        for z in &self.zones {
            match z.temp.read(&mut self.buf) {
                Ok(t) => match i64_of(t) {
                    Some(milli) => r.push(Quantity::Temperature, &z.label, milli as f64 / 1000.0, Unit::Celsius),
                    None => last_err = Some(ProbeError::Parse("thermal zone temp")),
                },
                Err(e) => last_err = Some(io_err("thermal zone temp")(e)),
            }
        }
        if r.samples.is_empty() {
            return Err(last_err.unwrap_or(ProbeError::Parse("thermal zone temp")));
        }
        for z in &self.zones {
            if let Some(c) = z.throttle_c {
                r.push(Quantity::TripPoint, &z.label, c, Unit::Celsius);
            }
        }
        Ok(r)
    }
}
