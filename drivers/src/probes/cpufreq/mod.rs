//! CPU clocks and throttling from `/sys/devices/system/cpu/cpu*/cpufreq`.

use std::path::Path;

use ferry_hal::reading::label_from;
use ferry_hal::{Bus, DriverDescriptor, Label, Quantity, Reading, Sensor, Timestamp, Unit};

use super::file::{numbered_entries, read_trimmed, SysFile};
use super::parse::u64_of;
use super::{io_err, OpenError, ProbeError};

mod driver;

pub use driver::{CpuFreqDriver};

/// The registry name of this probe.
pub const NAME: &str = "cpufreq";
/// The most cores reported (three samples each must fit a reading).
pub const MAX_CORES: usize = 10;

/// One core's frequency files.
#[derive(Debug)]
pub struct Core {
    label: Label,
    cur: SysFile,
    limit: SysFile,
    /// `cpuinfo_max_freq`, Hz: the hardware maximum.
    pub hw_max_hz: u64,
    /// `cpuinfo_min_freq`, Hz.
    pub hw_min_hz: u64,
}

/// Reads every core's current clock and the cap the kernel puts on it.
pub struct CpuFreqProbe {
    cores: Vec<Core>,
    buf: [u8; 32],
    descriptor: DriverDescriptor,
}

impl CpuFreqProbe {
    /// Opens `root/sys/devices/system/cpu/cpuN/cpufreq/` for every core that has one.
    pub fn open(root: &Path) -> Result<Self, OpenError> {
        let dir = root.join("sys/devices/system/cpu");
        let mut cores = Vec::new();
        for (name, path) in numbered_entries(&dir, "cpu").map_err(OpenError::io(&dir))? {
            if u64_of(name[3..].as_bytes()).is_none() || cores.len() == MAX_CORES {
                continue; // cpufreq/, cpuidle/ are not cores
            }
            let f = path.join("cpufreq");
            let (Ok(cur), Ok(limit)) =
                (SysFile::open(f.join("scaling_cur_freq")), SysFile::open(f.join("scaling_max_freq")))
            else {
                continue;
            };
            let khz = |file: &str| read_trimmed(f.join(file)).ok().and_then(|s| u64_of(s.as_bytes())).unwrap_or(0);
            cores.push(Core {
                label: label_from(&name),
                cur,
                limit,
                hw_max_hz: khz("cpuinfo_max_freq") * 1000,
                hw_min_hz: khz("cpuinfo_min_freq") * 1000,
            });
        }
        if cores.is_empty() {
            return Err(OpenError::Nothing(format!("no cpufreq under {}", dir.display())));
        }
        Ok(CpuFreqProbe {
            cores,
            buf: [0; 32],
            descriptor: DriverDescriptor::new(
                NAME,
                Bus::System,
                &[Quantity::CpuFrequency, Quantity::CpuFrequencyLimit, Quantity::Throttled],
            ),
        })
    }

    /// The cores found at start-up.
    pub fn cores(&self) -> &[Core] {
        &self.cores
    }
}

impl Sensor for CpuFreqProbe {
    type Error = ProbeError;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    /// Per core: the clock, the highest clock allowed now, and whether that cap is below the
    /// hardware maximum (thermal or power throttling lowers the policy's max, not the governor).
    fn read(&mut self, now: Timestamp) -> Result<Reading, ProbeError> {
        let mut r = Reading::new(now);
        for c in &self.cores {
            let cur = u64_of(c.cur.read(&mut self.buf).map_err(io_err("scaling_cur_freq"))?)
                .ok_or(ProbeError::Parse("scaling_cur_freq"))?;
            let limit = u64_of(c.limit.read(&mut self.buf).map_err(io_err("scaling_max_freq"))?)
                .ok_or(ProbeError::Parse("scaling_max_freq"))?;
            let throttled = c.hw_max_hz > 0 && limit * 1000 < c.hw_max_hz;
            r.push(Quantity::CpuFrequency, &c.label, (cur * 1000) as f64, Unit::Hertz);
            r.push(Quantity::CpuFrequencyLimit, &c.label, (limit * 1000) as f64, Unit::Hertz);
            r.push(Quantity::Throttled, &c.label, if throttled { 1.0 } else { 0.0 }, Unit::Flag);
        }
        Ok(r)
    }
}
