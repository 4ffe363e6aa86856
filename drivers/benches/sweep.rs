//! One full sweep of every system probe, against reading the same files the obvious way
//! (`std::fs::read_to_string` + `str::parse`) in the same run.
//!
//! `CARGO_TARGET_DIR=/tmp/target-drivers cargo bench -p ferry-drivers --bench sweep`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ferry_drivers::probes::{CpuFreqProbe, CpuProbe, MemoryProbe, NetProbe, PowerProbe, ThermalProbe};
use ferry_hal::Timestamp;

const SWEEPS: u32 = 5_000;

fn probes(root: &Path) -> Vec<Box<dyn ferry_drivers::DynSensor>> {
    let mut v: Vec<Box<dyn ferry_drivers::DynSensor>> = Vec::new();
    if let Ok(p) = CpuProbe::open(root) { v.push(Box::new(p)) }
    if let Ok(p) = MemoryProbe::open(root) { v.push(Box::new(p)) }
    if let Ok(p) = ThermalProbe::open(root, &[]) { v.push(Box::new(p)) }
    if let Ok(p) = CpuFreqProbe::open(root) { v.push(Box::new(p)) }
    if let Ok(p) = NetProbe::open(root, &[]) { v.push(Box::new(p)) }
    if let Ok(p) = PowerProbe::open(root, &[]) { v.push(Box::new(p)) }
    v
}

/// The files the probes read, found the same way.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut f = vec![root.join("proc/stat"), root.join("proc/loadavg"), root.join("proc/meminfo")];
    let list = |d: PathBuf| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        v.sort();
        v
    };
    for z in list(root.join("sys/class/thermal")) {
        f.push(z.join("temp"));
    }
    for c in list(root.join("sys/devices/system/cpu")) {
        if c.join("cpufreq/scaling_cur_freq").exists() {
            f.push(c.join("cpufreq/scaling_cur_freq"));
            f.push(c.join("cpufreq/scaling_max_freq"));
        }
    }
    for n in list(root.join("sys/class/net")) {
        if !n.ends_with("lo") {
            f.push(n.join("statistics/rx_bytes"));
            f.push(n.join("statistics/tx_bytes"));
        }
    }
    for h in list(root.join("sys/class/hwmon")) {
        for n in 0..16 {
            if h.join(format!("curr{n}_input")).exists() {
                f.push(h.join(format!("curr{n}_input")));
                f.push(h.join(format!("in{n}_input")));
            }
        }
    }
    f.retain(|p| p.exists());
    f
}

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, root) in [("this machine (/)", PathBuf::from("/")), ("jetson-nano fixture", manifest.join("tests/fixtures/jetson-nano"))] {
        let mut set = probes(&root);
        let paths = files(&root);
        // Warm up both.
        for i in 0..100 {
            for p in &mut set {
                let _ = black_box(p.read(Timestamp(i)));
            }
        }
        let t = Instant::now();
        for i in 0..SWEEPS {
            for p in &mut set {
                black_box(p.read(Timestamp(u64::from(i) * 1000)).is_ok());
            }
        }
        let sweep_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(SWEEPS);

        let t = Instant::now();
        for _ in 0..SWEEPS {
            for p in &paths {
                let s = std::fs::read_to_string(p).unwrap_or_default();
                let n: u64 = s.split_whitespace().filter_map(|w| w.parse::<u64>().ok()).sum();
                black_box(n);
            }
        }
        let naive_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(SWEEPS);
        println!(
            "{name}: {} probes over {} files: sweep {:.1} µs, read_to_string {:.1} µs, ratio {:.2}x",
            set.len(),
            paths.len(),
            sweep_us,
            naive_us,
            naive_us / sweep_us
        );
    }
}
