//! The device descriptor from a board config and what the probes see.

use std::path::Path;

use ferry_hal::device::{Accelerator, CpuCluster, Name};
use ferry_hal::DeviceDescriptor;

use crate::config::BoardConfig;
use crate::probes::file::{numbered_entries, read_trimmed};
use crate::probes::parse::{keyed_u64, u64_of};

fn name(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// What the agent publishes about this board: the config's declared hardware, completed from
/// `/proc` and `/sys` under `root` where the config is silent. Throughput starts empty; the
/// agent fills it in with [`DeviceDescriptor::set_throughput`] once it has measured.
pub fn describe(config: &BoardConfig, root: &Path) -> DeviceDescriptor {
    let mut d = DeviceDescriptor { board: name(&config.board.name), ..Default::default() };
    for c in &config.board.cpu {
        let _ = d.cpu.push(CpuCluster {
            core: name(&c.core),
            count: c.count,
            max_hz: u64::from(c.max_mhz) * 1_000_000,
            min_hz: u64::from(c.min_mhz) * 1_000_000,
        });
    }
    if d.cpu.is_empty() {
        let cores = std::fs::read_to_string(root.join("proc/stat"))
            .map(|s| s.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count())
            .unwrap_or(0);
        let khz = |f: &str| read_trimmed(root.join("sys/devices/system/cpu/cpu0/cpufreq").join(f)).ok().and_then(|s| u64_of(s.as_bytes()));
        let _ = d.cpu.push(CpuCluster {
            core: name("unknown"),
            count: u16::try_from(cores).unwrap_or(u16::MAX),
            max_hz: khz("cpuinfo_max_freq").unwrap_or(0) * 1000,
            min_hz: khz("cpuinfo_min_freq").unwrap_or(0) * 1000,
        });
    }
    d.memory_bytes = match config.board.memory_mib {
        Some(m) => u64::from(m) * 1024 * 1024,
        None => std::fs::read(root.join("proc/meminfo")).ok().and_then(|t| keyed_u64(&t, b"MemTotal")).unwrap_or(0) * 1024,
    };
    for a in &config.board.accelerators {
        let _ = d.accelerators.push(Accelerator { kind: name(&a.kind), name: name(&a.name) });
    }
    for p in ferry_hal::Precision::ALL {
        if config.models.iter().any(|m| m.precisions.contains(&p)) {
            let _ = d.precisions.push(p);
        }
    }
    d
}

/// Whether a thermal zone of type `zone` exists under `root`.
pub fn zone_exists(root: &Path, zone: &str) -> bool {
    numbered_entries(&root.join("sys/class/thermal"), "thermal_zone")
        .map(|zs| zs.iter().any(|(_, p)| read_trimmed(p.join("type")).is_ok_and(|t| t == zone)))
        .unwrap_or(false)
}
