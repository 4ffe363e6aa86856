//! Network throughput from `/sys/class/net/*/statistics/{rx,tx}_bytes`.

use std::path::Path;

use ferry_hal::reading::label_from;
use ferry_hal::{Bus, DriverDescriptor, Label, Quantity, Reading, Sensor, Timestamp, Unit};

use super::file::SysFile;
use super::parse::u64_of;
use super::{io_err, OpenError, ProbeError};

mod driver;

pub use driver::{NetDriver, Params};

/// The registry name of this probe.
pub const NAME: &str = "net";
/// The most interfaces reported (four samples each must fit a reading).
pub const MAX_INTERFACES: usize = 8;

#[derive(Debug)]
struct Interface {
    label: Label,
    rx: SysFile,
    tx: SysFile,
    prev: Option<(u64, u64)>,
}

/// Reads byte counters and turns them into rates between reads.
pub struct NetProbe {
    interfaces: Vec<Interface>,
    prev_at: Timestamp,
    buf: [u8; 32],
    descriptor: DriverDescriptor,
}

impl NetProbe {
    /// Opens the counters of the named interfaces, or of every interface but `lo` when `only`
    /// is empty.
    pub fn open(root: &Path, only: &[String]) -> Result<Self, OpenError> {
        let dir = root.join("sys/class/net");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(OpenError::io(&dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| if only.is_empty() { n != "lo" } else { only.contains(n) })
            .collect();
        names.sort();
        let mut interfaces = Vec::new();
        for name in names.into_iter().take(MAX_INTERFACES) {
            let s = dir.join(&name).join("statistics");
            let (Ok(rx), Ok(tx)) = (SysFile::open(s.join("rx_bytes")), SysFile::open(s.join("tx_bytes"))) else {
                continue;
            };
            interfaces.push(Interface { label: label_from(&name), rx, tx, prev: None });
        }
        if interfaces.is_empty() {
            return Err(OpenError::Nothing(format!("no network interfaces under {}", dir.display())));
        }
        Ok(NetProbe {
            interfaces,
            prev_at: Timestamp(0),
            buf: [0; 32],
            descriptor: DriverDescriptor::new(
                NAME,
                Bus::System,
                &[Quantity::RxRate, Quantity::TxRate, Quantity::RxBytes, Quantity::TxBytes],
            ),
        })
    }
}

impl Sensor for NetProbe {
    type Error = ProbeError;

    fn descriptor(&self) -> &DriverDescriptor {
        &self.descriptor
    }

    /// Per interface: bytes per second since the previous read (0 on the first read, and when
    /// a counter went backwards because the interface was reset), then the raw counters.
    fn read(&mut self, now: Timestamp) -> Result<Reading, ProbeError> {
        let mut r = Reading::new(now);
        let dt_s = now.as_millis().saturating_sub(self.prev_at.as_millis()) as f64 / 1000.0;
        for i in &mut self.interfaces {
            let rx = u64_of(i.rx.read(&mut self.buf).map_err(io_err("rx_bytes"))?).ok_or(ProbeError::Parse("rx_bytes"))?;
            let tx = u64_of(i.tx.read(&mut self.buf).map_err(io_err("tx_bytes"))?).ok_or(ProbeError::Parse("tx_bytes"))?;
            let (rx_rate, tx_rate) = match i.prev {
                Some((prx, ptx)) if dt_s > 0.0 => {
                    (rx.saturating_sub(prx) as f64 / dt_s, tx.saturating_sub(ptx) as f64 / dt_s)
                }
                _ => (0.0, 0.0),
            };
            i.prev = Some((rx, tx));
            r.push(Quantity::RxRate, &i.label, rx_rate, Unit::BytesPerSecond);
            r.push(Quantity::TxRate, &i.label, tx_rate, Unit::BytesPerSecond);
            r.push(Quantity::RxBytes, &i.label, rx as f64, Unit::Bytes);
            r.push(Quantity::TxBytes, &i.label, tx as f64, Unit::Bytes);
        }
        self.prev_at = now;
        Ok(r)
    }
}
