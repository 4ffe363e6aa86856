//! Power rails from `/sys/class/hwmon/hwmon*` (e.g. the INA3221 monitors on Jetson boards).
//!
//! hwmon units (Documentation/hwmon/sysfs-interface): `inN_input` mV, `currN_input` mA,
//! `powerN_input` µW. A rail is a channel N that has a current; its name is `inN_label` when
//! the driver gives one, else `<chip>.N`.

use std::path::Path;

use ferry_hal::reading::label_from;
use ferry_hal::{Bus, DriverDescriptor, Label, Quantity, Reading, Sensor, Timestamp, Unit};

use super::file::{numbered_entries, read_trimmed, SysFile};
use super::parse::i64_of;
use super::{io_err, OpenError, ProbeError};

mod driver;

pub use driver::{Params, PowerDriver};

/// The registry name of this probe.
pub const NAME: &str = "power";
/// The most rails reported (three samples each must fit a reading).
pub const MAX_RAILS: usize = 10;

/// One monitored rail.
#[derive(Debug)]
pub struct Rail {
    /// The rail's name.
    pub name: String,
    /// The hwmon chip it is on (`ina3221`).
    pub chip: String,
    label: Label,
    voltage: SysFile,
    current: SysFile,
}

/// Reads voltage and current of every rail and reports their product as power.
pub struct PowerProbe {
    rails: Vec<Rail>,
    buf: [u8; 32],
    descriptor: DriverDescriptor,
}

impl PowerProbe {
    /// Opens the rails of hwmon chips under `root/sys/class/hwmon` whose `name` is in `chips`
    /// (all chips when empty).
    pub fn open(root: &Path, chips: &[String]) -> Result<Self, OpenError> {
        let dir = root.join("sys/class/hwmon");
        let mut rails = Vec::new();
        for (_, path) in numbered_entries(&dir, "hwmon").map_err(OpenError::io(&dir))? {
            let chip = read_trimmed(path.join("name")).unwrap_or_default();
            if !chips.is_empty() && !chips.contains(&chip) {
                continue;
            }
            for n in 0..16 {
                if rails.len() == MAX_RAILS {
                    break;
                }
                let (Ok(current), Ok(voltage)) = (
                    SysFile::open(path.join(format!("curr{n}_input"))),
                    SysFile::open(path.join(format!("in{n}_input"))),
                ) else {
                    continue;
                };
                let name = read_trimmed(path.join(format!("in{n}_label"))).unwrap_or_else(|_| format!("{chip}.{n}"));
                rails.push(Rail { label: label_from(&name), name, chip: chip.clone(), voltage, current });
            }
        }
        if rails.is_empty() {
            return Err(OpenError::Nothing(format!("no power rails under {}", dir.display())));
        }
        Ok(PowerProbe {
            rails,
            buf: [0; 32],
            descriptor: DriverDescriptor::new(NAME, Bus::System, &[Quantity::Voltage, Quantity::Current, Quantity::Power]),
        })
    }

    /// The rails found at start-up.
    pub fn rails(&self) -> &[Rail] {
        &self.rails
    }
}

impl Sensor for PowerProbe {
    type Error = ProbeError;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    fn read(&mut self, now: Timestamp) -> Result<Reading, ProbeError> {
        let mut r = Reading::new(now);
        for rail in &self.rails {
            let mv = i64_of(rail.voltage.read(&mut self.buf).map_err(io_err("hwmon in*_input"))?)
                .ok_or(ProbeError::Parse("hwmon in*_input"))?;
            let ma = i64_of(rail.current.read(&mut self.buf).map_err(io_err("hwmon curr*_input"))?)
                .ok_or(ProbeError::Parse("hwmon curr*_input"))?;
            let (v, a) = (mv as f64 / 1000.0, ma as f64 / 1000.0);
            r.push(Quantity::Voltage, &rail.label, v, Unit::Volt);
            r.push(Quantity::Current, &rail.label, a, Unit::Ampere);
            r.push(Quantity::Power, &rail.label, v * a, Unit::Watt);
        }
        Ok(r)
    }
}
