//! CPU utilization per core and overall from `/proc/stat`; run queue and load from
//! `/proc/loadavg`.

use std::path::Path;

use ferry_hal::{Bus, DriverDescriptor, Label, Quantity, Reading, Sensor, Timestamp, Unit};

use super::file::SysFile;
use super::parse::{f64_of, fields, lines, u64_of};
use super::{io_err, OpenError, ProbeError};

mod driver;

pub use driver::{CpuDriver};

/// The registry name of this probe.
pub const NAME: &str = "cpu";
/// The most cores reported one by one (the overall figure is always reported).
pub const MAX_CORES: usize = 16;
/// `/proc/stat` starts with the `cpu` lines; the huge `intr` line after them need not fit.
const STAT_BUFFER: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, Default)]
struct Times {
    busy: u64,
    total: u64,
}

/// Reads `/proc/stat` and `/proc/loadavg`.
pub struct CpuProbe {
    stat: SysFile,
    loadavg: SysFile,
    buf: Box<[u8]>,
    prev: [Times; MAX_CORES + 1],
    labels: Vec<Label>,
    descriptor: DriverDescriptor,
}

impl CpuProbe {
    /// Opens `root/proc/stat` and `root/proc/loadavg`.
    pub fn open(root: &Path) -> Result<Self, OpenError> {
        let p = root.join("proc/stat");
        let stat = SysFile::open(&p).map_err(OpenError::io(&p))?;
        let p = root.join("proc/loadavg");
        let loadavg = SysFile::open(&p).map_err(OpenError::io(&p))?;
        let mut labels = vec![ferry_hal::reading::label_from("all")];
        for i in 0..MAX_CORES {
            labels.push(ferry_hal::reading::label_from(&format!("cpu{i}")));
        }
        let mut probe = CpuProbe {
            stat,
            loadavg,
            buf: vec![0u8; STAT_BUFFER].into_boxed_slice(),
            prev: [Times::default(); MAX_CORES + 1],
            labels,
            descriptor: DriverDescriptor::new(
                NAME,
                Bus::System,
                &[Quantity::CpuUtilization, Quantity::RunQueue, Quantity::LoadAverage],
            ),
        };
        // Prime the counters so that the first reading is since start-up, not since boot.
        let mut scratch = Reading::new(Timestamp(0));
        probe.read_stat(&mut scratch).map_err(|e| OpenError::Nothing(e.to_string()))?;
        Ok(probe)
    }

    fn read_stat(&mut self, r: &mut Reading) -> Result<(), ProbeError> {
        let text = self.stat.read(&mut self.buf).map_err(io_err("/proc/stat"))?;
        let mut seen_total = false;
        for line in lines(text) {
            if !line.starts_with(b"cpu") {
                if seen_total {
                    break; // the cpu lines are contiguous and come first
                }
                continue;
            }
            let mut f = fields(line);
            let name = f.next().unwrap_or_default();
            let slot = if name == b"cpu" {
                seen_total = true;
                0
            } else {
                match u64_of(&name[3..]) {
                    Some(i) if (i as usize) < MAX_CORES => i as usize + 1,
                    _ => continue,
                }
            };
            // user nice system idle iowait irq softirq steal (guest is already inside user).
            let mut v = [0u64; 8];
            for (k, x) in f.take(8).enumerate() {
                v[k] = u64_of(x).ok_or(ProbeError::Parse("/proc/stat"))?;
            }
            let total: u64 = v.iter().sum();
            let t = Times { busy: total - v[3] - v[4], total };
            let p = self.prev[slot];
            let dt = t.total.saturating_sub(p.total);
            let util = if dt == 0 { 0.0 } else { 100.0 * t.busy.saturating_sub(p.busy) as f64 / dt as f64 };
            self.prev[slot] = t;
            r.push(Quantity::CpuUtilization, self.labels[slot].as_str(), util, Unit::Percent);
        }
        if !seen_total {
            return Err(ProbeError::Parse("/proc/stat"));
        }
        Ok(())
    }
}

impl Sensor for CpuProbe {
    type Error = ProbeError;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    fn read(&mut self, now: Timestamp) -> Result<Reading, ProbeError> {
        let mut r = Reading::new(now);
        self.read_stat(&mut r)?;
        // "0.52 0.58 0.59 2/345 12345": load1 load5 load15 runnable/total last-pid
        let text = self.loadavg.read(&mut self.buf).map_err(io_err("/proc/loadavg"))?;
        let mut f = fields(text);
        let load1 = f.next().and_then(f64_of).ok_or(ProbeError::Parse("/proc/loadavg"))?;
        let runnable = f
            .nth(2)
            .and_then(|x| x.split(|&b| b == b'/').next())
            .and_then(u64_of)
            .ok_or(ProbeError::Parse("/proc/loadavg"))?;
        r.push(Quantity::RunQueue, "", runnable as f64, Unit::Count);
        r.push(Quantity::LoadAverage, "1m", load1, Unit::Count);
        Ok(r)
    }
}
