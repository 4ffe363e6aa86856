//! Memory from `/proc/meminfo`.

use std::path::Path;

use ferry_hal::{Bus, DriverDescriptor, Quantity, Reading, Sensor, Timestamp, Unit};

use super::file::SysFile;
use super::parse::keyed_u64;
use super::{io_err, OpenError, ProbeError};

mod driver;

pub use driver::{MemoryDriver};

/// The registry name of this probe.
pub const NAME: &str = "memory";

/// Reads `/proc/meminfo`.
pub struct MemoryProbe {
    meminfo: SysFile,
    buf: Box<[u8]>,
    descriptor: DriverDescriptor,
}

impl MemoryProbe {
    /// Opens `root/proc/meminfo`.
    pub fn open(root: &Path) -> Result<Self, OpenError> {
        let p = root.join("proc/meminfo");
        Ok(MemoryProbe {
            meminfo: SysFile::open(&p).map_err(OpenError::io(&p))?,
            buf: vec![0u8; 8 * 1024].into_boxed_slice(),
            descriptor: DriverDescriptor::new(
                NAME,
                Bus::System,
                &[Quantity::MemoryTotal, Quantity::MemoryAvailable],
            ),
        })
    }
}

impl Sensor for MemoryProbe {
    type Error = ProbeError;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    fn read(&mut self, now: Timestamp) -> Result<Reading, ProbeError> {
        let text = self.meminfo.read(&mut self.buf).map_err(io_err("/proc/meminfo"))?;
        let total = keyed_u64(text, b"MemTotal").ok_or(ProbeError::Parse("/proc/meminfo"))?;
        // MemAvailable exists since Linux 3.14; before that, free is the honest lower bound.
        let available = keyed_u64(text, b"MemAvailable")
            .or_else(|| keyed_u64(text, b"MemFree"))
            .ok_or(ProbeError::Parse("/proc/meminfo"))?;
        let mut r = Reading::new(now);
        r.push(Quantity::MemoryTotal, "", (total * 1024) as f64, Unit::Bytes);
        r.push(Quantity::MemoryAvailable, "", (available * 1024) as f64, Unit::Bytes);
        Ok(r)
    }
}
