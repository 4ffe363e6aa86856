//! Linux system probes: CPU, memory, thermal, CPU frequency, network and power rails, read from
//! procfs and sysfs under a root path (`/` on a board, a fixture tree in tests).
//!
//! Every probe opens its files once in `open` and re-reads them with `pread` into a buffer it
//! owns, so that [`Sensor::read`](ferry_hal::Sensor::read) never allocates.
//!
//! As with the chips in [`bus`](crate::bus), each probe is a directory: `mod.rs` the probe,
//! `driver.rs` its registry glue, which keeps the config's concerns (keys, validation, error
//! wording) out of the code that reads the kernel.

pub mod cpu;
pub mod cpufreq;
pub mod file;
pub mod memory;
pub mod net;
pub mod parse;
pub mod power;
pub mod thermal;

use std::io;
use std::path::PathBuf;

pub use cpu::CpuProbe;
pub use cpufreq::CpuFreqProbe;
pub use memory::MemoryProbe;
pub use net::NetProbe;
pub use power::PowerProbe;
pub use thermal::ThermalProbe;

use crate::registry::Registry;

/// Registers every system probe. Adding a probe: its module, then one line here.
pub fn register_all(registry: &mut Registry) {
    registry
        .register::<cpu::CpuDriver>()
        .register::<memory::MemoryDriver>()
        .register::<thermal::ThermalDriver>()
        .register::<cpufreq::CpuFreqDriver>()
        .register::<net::NetDriver>()
        .register::<power::PowerDriver>();
}

/// A probe could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A file or directory it needs could not be opened.
    #[error("cannot open {path}: {source}")]
    Io {
        /// What could not be opened.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The subsystem is there but has nothing to read (no thermal zones, no rails).
    #[error("nothing to read: {0}")]
    Nothing(String),
}

impl OpenError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> OpenError {
        let path = path.into();
        move |source| OpenError::Io { path, source }
    }
}

/// A probe read failed. Carries no allocation, so failing is as cheap as succeeding.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Reading a file failed.
    #[error("reading {what}: {source}")]
    Io {
        /// Which file, by role.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A file did not have the expected form.
    #[error("unexpected content in {0}")]
    Parse(&'static str),
}

pub(crate) fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> ProbeError {
    move |source| ProbeError::Io { what, source }
}
