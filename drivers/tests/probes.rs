//! System probes against fixture trees of a Raspberry Pi 4 and a Jetson Nano, and once against
//! this machine's real `/proc` and `/sys`.

use std::path::{Path, PathBuf};

use ferry_drivers::probes::{CpuFreqProbe, CpuProbe, MemoryProbe, NetProbe, PowerProbe, ThermalProbe};
use ferry_hal::{Quantity, Sensor, Timestamp, Unit};

fn fixture(board: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(board)
}

fn value(r: &ferry_hal::Reading, q: Quantity, label: &str) -> f64 {
    r.get_labelled(q, label).unwrap_or_else(|| panic!("no {q}[{label}] in {r}")).value
}

#[test]
fn cpu_probe_reads_rpi4_run_queue_and_load() {
    let mut p = CpuProbe::open(&fixture("rpi4")).unwrap();
    let r = p.read(Timestamp(1000)).unwrap();
    // The counters do not move in a fixture, so utilization since start-up is 0.
    assert_eq!(value(&r, Quantity::CpuUtilization, "all"), 0.0);
    assert!(r.get_labelled(Quantity::CpuUtilization, "cpu3").is_some());
    assert!(r.get_labelled(Quantity::CpuUtilization, "cpu4").is_none());
    assert_eq!(value(&r, Quantity::RunQueue, ""), 2.0);
    assert_eq!(value(&r, Quantity::LoadAverage, "1m"), 0.52);
}

#[test]
fn cpu_probe_computes_utilization_between_reads() {
    let dir = std::env::temp_dir().join(format!("ferry-cpu-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    std::fs::write(dir.join("proc/loadavg"), "0.10 0.20 0.30 1/100 5\n").unwrap();
    std::fs::write(dir.join("proc/stat"), "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0 0 0\nintr 1\n").unwrap();
    let mut p = CpuProbe::open(&dir).unwrap();
    // 300 more busy jiffies and 100 more idle: 75 % busy.
    std::fs::write(dir.join("proc/stat"), "cpu  250 0 250 900 0 0 0 0 0 0\ncpu0 250 0 250 900 0 0 0 0 0 0\nintr 1\n").unwrap();
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(value(&r, Quantity::CpuUtilization, "all"), 75.0);
    assert_eq!(value(&r, Quantity::CpuUtilization, "cpu0"), 75.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cpu_probe_reads_jetson_nano() {
    let mut p = CpuProbe::open(&fixture("jetson-nano")).unwrap();
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(value(&r, Quantity::RunQueue, ""), 3.0);
    assert_eq!(value(&r, Quantity::LoadAverage, "1m"), 1.25);
}

#[test]
fn memory_probe_reports_bytes_on_both_boards() {
    let mut p = MemoryProbe::open(&fixture("rpi4")).unwrap();
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(value(&r, Quantity::MemoryTotal, ""), 3_884_428.0 * 1024.0);
    assert_eq!(value(&r, Quantity::MemoryAvailable, ""), 3_391_740.0 * 1024.0);
    assert_eq!(r.get(Quantity::MemoryTotal).unwrap().unit, Unit::Bytes);
    let mut p = MemoryProbe::open(&fixture("jetson-nano")).unwrap();
    assert_eq!(value(&p.read(Timestamp(0)).unwrap(), Quantity::MemoryAvailable, ""), 2_145_678.0 * 1024.0);
}

#[test]
fn thermal_probe_reads_rpi4_zone_and_its_passive_trip() {
    let mut p = ThermalProbe::open(&fixture("rpi4"), &[]).unwrap();
    assert_eq!(p.zones().len(), 1);
    assert_eq!(p.zones()[0].trips.len(), 2);
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(value(&r, Quantity::Temperature, "cpu-thermal"), 47.236);
    assert_eq!(value(&r, Quantity::TripPoint, "cpu-thermal"), 80.0);
}

#[test]
fn thermal_probe_reads_every_jetson_zone_or_only_the_named_ones() {
    let mut p = ThermalProbe::open(&fixture("jetson-nano"), &[]).unwrap();
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(r.samples.iter().filter(|s| s.quantity == Quantity::Temperature).count(), 6);
    assert_eq!(value(&r, Quantity::Temperature, "CPU-therm"), 45.0);
    assert_eq!(value(&r, Quantity::TripPoint, "CPU-therm"), 97.0);
    // A zone with only active (fan) trips reports its lowest.
    assert_eq!(value(&r, Quantity::TripPoint, "thermal-fan-est"), 51.0);
    let mut p = ThermalProbe::open(&fixture("jetson-nano"), &["GPU-therm".to_owned()]).unwrap();
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(r.samples.len(), 2);
}

#[test]
fn cpufreq_probe_sees_rpi4_unthrottled_and_jetson_capped() {
    let mut p = CpuFreqProbe::open(&fixture("rpi4")).unwrap();
    assert_eq!(p.cores().len(), 4);
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(value(&r, Quantity::CpuFrequency, "cpu0"), 1.2e9);
    assert_eq!(value(&r, Quantity::CpuFrequency, "cpu1"), 1.5e9);
    assert_eq!(value(&r, Quantity::Throttled, "cpu0"), 0.0);

    let mut p = CpuFreqProbe::open(&fixture("jetson-nano")).unwrap();
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(value(&r, Quantity::CpuFrequencyLimit, "cpu2"), 921.6e6);
    assert_eq!(value(&r, Quantity::Throttled, "cpu2"), 1.0);
}

#[test]
fn net_probe_turns_counters_into_rates_and_skips_loopback() {
    let mut p = NetProbe::open(&fixture("rpi4"), &[]).unwrap();
    let r = p.read(Timestamp(1_000)).unwrap();
    assert!(r.get_labelled(Quantity::RxBytes, "lo").is_none());
    assert_eq!(value(&r, Quantity::RxBytes, "eth0"), 123_456_789.0);
    assert_eq!(value(&r, Quantity::RxRate, "eth0"), 0.0); // first read: no rate yet
    let r = p.read(Timestamp(2_000)).unwrap();
    assert_eq!(value(&r, Quantity::TxRate, "wlan0"), 0.0);

    let dir = std::env::temp_dir().join(format!("ferry-net-{}", std::process::id()));
    let s = dir.join("sys/class/net/eth0/statistics");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(s.join("rx_bytes"), "1000\n").unwrap();
    std::fs::write(s.join("tx_bytes"), "0\n").unwrap();
    let mut p = NetProbe::open(&dir, &[]).unwrap();
    p.read(Timestamp(10_000)).unwrap();
    std::fs::write(s.join("rx_bytes"), "501000\n").unwrap();
    std::fs::write(s.join("tx_bytes"), "250\n").unwrap();
    let r = p.read(Timestamp(10_500)).unwrap();
    assert_eq!(value(&r, Quantity::RxRate, "eth0"), 1_000_000.0);
    assert_eq!(value(&r, Quantity::TxRate, "eth0"), 500.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn net_probe_reads_only_named_jetson_interfaces() {
    let mut p = NetProbe::open(&fixture("jetson-nano"), &["eth0".to_owned(), "wlan0".to_owned()]).unwrap();
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(r.samples.len(), 8);
    assert!(r.get_labelled(Quantity::RxBytes, "l4tbr0").is_none());
}

#[test]
fn power_probe_reads_jetson_ina3221_rails() {
    let mut p = PowerProbe::open(&fixture("jetson-nano"), &["ina3221".to_owned()]).unwrap();
    assert_eq!(p.rails().len(), 3);
    let r = p.read(Timestamp(0)).unwrap();
    assert_eq!(value(&r, Quantity::Voltage, "POM_5V_IN"), 5.08);
    assert_eq!(value(&r, Quantity::Current, "POM_5V_IN"), 1.12);
    assert!((value(&r, Quantity::Power, "POM_5V_IN") - 5.08 * 1.12).abs() < 1e-12);
    assert!((value(&r, Quantity::Power, "POM_5V_CPU") - 5.072 * 0.52).abs() < 1e-12);
}

#[test]
fn power_probe_on_rpi4_finds_no_rails_and_says_so() {
    let e = PowerProbe::open(&fixture("rpi4"), &[]).err().unwrap();
    assert!(e.to_string().contains("no power rails"), "{e}");
}

#[test]
fn probes_read_this_machines_real_proc_and_sys() {
    let root = Path::new("/");
    let mut cpu = CpuProbe::open(root).unwrap();
    let r = cpu.read(Timestamp(0)).unwrap();
    let u = value(&r, Quantity::CpuUtilization, "all");
    assert!((0.0..=100.0).contains(&u));
    let mut mem = MemoryProbe::open(root).unwrap();
    let r = mem.read(Timestamp(0)).unwrap();
    assert!(value(&r, Quantity::MemoryTotal, "") > value(&r, Quantity::MemoryAvailable, ""));
    // Every machine Ferry runs on has a network interface; thermal, cpufreq and hwmon may be
    // absent in a VM, and then opening says why instead of failing a read later.
    let mut net = NetProbe::open(root, &[]).unwrap();
    net.read(Timestamp(0)).unwrap();
    for result in [
        ThermalProbe::open(root, &[]).map(|mut p| p.read(Timestamp(0)).map(|_| ())),
        CpuFreqProbe::open(root).map(|mut p| p.read(Timestamp(0)).map(|_| ())),
        PowerProbe::open(root, &[]).map(|mut p| p.read(Timestamp(0)).map(|_| ())),
    ] {
        match result {
            Ok(read) => read.unwrap(),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
