//! Board configs: every shipped one passes `ferry check`; every broken one under
//! `tests/configs/` fails with the errors it was broken for, all reported at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as I2cT};
use ferry_drivers::bus::dynbus::{DynDelay, DynI2c, DynInput, DynOutput, DynSpi};
use ferry_drivers::set::Health;
use ferry_drivers::{check, check_with, BoardConfig, BusProvider, Registry, SensorSet};
use ferry_hal::{Quantity, Timestamp};

const BOARDS: [&str; 5] = ["rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "x86-dev"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}
fn board(name: &str) -> PathBuf {
    repo().join("firmware-configs").join(format!("{name}.toml"))
}
fn broken(name: &str) -> PathBuf {
    repo().join("tests/configs").join(format!("{name}.toml"))
}
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn every_shipped_board_config_parses() {
    for b in BOARDS {
        let c = BoardConfig::load(board(b)).unwrap_or_else(|e| panic!("{b}:\n{e}"));
        assert_eq!(c.board.name, b);
        assert!(c.model("digits").is_some() && c.model("efficientnet-lite0").is_some());
        assert!(c.thermal.set_point_c < c.thermal.throttle_point_c);
        assert!(!c.targets.is_empty());
    }
}

#[test]
fn check_passes_on_every_shipped_board_with_absent_buses_as_warnings() {
    for b in BOARDS {
        let r = check(board(b));
        assert!(r.ok(), "{b}:\n{r}");
        let d = r.descriptor.as_ref().unwrap();
        assert_eq!(d.board.as_str(), b);
        assert!(d.memory_bytes > 0);
        println!("{r}\n");
    }
    // No /dev/i2c-1 on this machine: the Pi 4's bus sensors are warnings that name the device.
    let r = check(board("rpi4"));
    if !Path::new("/dev/i2c-1").exists() {
        assert!(r.warnings.iter().any(|w| w.key == "sensors[0]" && w.message.contains("/dev/i2c-1 is absent")), "{r}");
    }
}

#[test]
fn check_on_the_pi4_fixture_tree_finds_its_thermal_zone() {
    let r = check_with(board("rpi4"), &Registry::builtin(), Arc::new(ferry_drivers::registry::LinuxBuses), Some(&fixture("rpi4")));
    assert!(r.ok(), "{r}");
    assert!(!r.warnings.iter().any(|w| w.key == "thermal.zone"), "{r}");
    assert!(!r.warnings.iter().any(|w| w.key == "sensors[6]"), "the soc probe opens: {r}");
}

fn errors_of(name: &str) -> Vec<(String, String)> {
    let r = check(broken(name));
    assert!(!r.ok(), "{name} should fail");
    println!("{r}\n");
    for e in &r.errors {
        assert!(e.to_string().contains(&format!("{name}.toml")), "names the file: {e}");
        assert!(e.to_string().contains("expected"), "says what was expected: {e}");
    }
    r.errors.iter().map(|e| (e.key.clone(), e.to_string())).collect()
}

fn has(errors: &[(String, String)], key: &str, text: &str) {
    assert!(errors.iter().any(|(k, m)| k == key && m.contains(text)), "no error at `{key}` containing `{text}` in {errors:#?}");
}

#[test]
fn unknown_driver_names_the_key_and_lists_the_drivers() {
    let e = errors_of("unknown-driver");
    has(&e, "sensors[0].driver", "`bme281`");
    has(&e, "sensors[0].driver", "bme280, cpu, cpufreq");
}

#[test]
fn a_bus_that_is_not_declared_is_an_error() {
    let e = errors_of("missing-bus");
    has(&e, "sensors[0].bus", "`i2c7`, which is not declared");
    has(&e, "sensors[0].bus", "a bus of [[buses]] (i2c1)");
}

#[test]
fn a_bme280_address_other_than_0x76_or_0x77_is_an_error() {
    let e = errors_of("wrong-i2c-address");
    has(&e, "sensors[0].address", "0x76 or 0x77");
    has(&e, "sensors[0].address", "found 0x40");
}

#[test]
fn unknown_keys_are_refused_in_sensors_and_sections() {
    let e = errors_of("unknown-key");
    has(&e, "sensors[0].adress", "a known key: `bus` or `address`");
    has(&e, "thermal.throttle_point", "unknown key");
}

#[test]
fn values_out_of_range_say_the_range() {
    let e = errors_of("out-of-range");
    has(&e, "sensors[0].interval_ms", "between 10 and 3600000");
    has(&e, "thermal.throttle_point_c", "between 40 and 125");
    has(&e, "targets[0].max_memory_ratio", "at most 1");
}

#[test]
fn every_error_in_a_config_is_reported_at_once() {
    let e = errors_of("many-errors");
    has(&e, "sensors[0].driver", "`bme281`");
    has(&e, "sensors[1].bus", "`spi9`");
    has(&e, "sensors[1].address", "0x48, 0x49");
    has(&e, "sensors[2].interval_ms", "between 10");
    has(&e, "thermal.set_point_c", "below the throttle point");
    has(&e, "energy.radio_nj_per_byte", "between 0");
    has(&e, "energy.inference[0].model", "a model of [[models]] (digits)");
    has(&e, "targets[0].precision", "a precision of model `digits` (int8)");
    has(&e, "targets[1].endpoint", "mqtts://");
    assert!(e.len() >= 10, "{e:#?}");
}

#[test]
fn unknown_board_key_is_reported_with_its_section() {
    let e = errors_of("many-errors");
    assert!(e.iter().any(|(k, _)| k == "board.colour"), "{e:#?}");
}

#[test]
fn a_config_that_is_not_toml_says_where() {
    let dir = std::env::temp_dir().join(format!("ferry-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.toml");
    std::fs::write(&p, "[board\nname = 1\n").unwrap();
    let r = check(&p);
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].to_string().contains("expected valid TOML"), "{r}");
    let r = check(dir.join("missing.toml"));
    assert!(r.errors[0].to_string().contains("a readable board config file"), "{r}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Buses that exist (or not, switchable) and whose I2C answers from a script.
struct MockBuses {
    present: AtomicBool,
    i2c: Mutex<Vec<I2cMock>>,
}

impl BusProvider for MockBuses {
    fn exists(&self, _: &Path) -> bool {
        self.present.load(Ordering::SeqCst)
    }
    fn i2c(&self, _: &Path) -> Result<DynI2c, String> {
        self.i2c.lock().unwrap().pop().map(DynI2c::new).ok_or_else(|| "no more mock buses".into())
    }
    fn spi(&self, _: &Path, _: u32) -> Result<DynSpi, String> {
        Err("no SPI in this test".into())
    }
    fn gpio_input(&self, _: &Path, _: u32) -> Result<DynInput, String> {
        Err("no GPIO in this test".into())
    }
    fn gpio_output(&self, _: &Path, _: u32, _: bool) -> Result<DynOutput, String> {
        Err("no GPIO in this test".into())
    }
    fn delay(&self) -> DynDelay {
        DynDelay::new(NoopDelay::new())
    }
}

#[test]
fn a_chip_that_fails_the_chip_id_check_is_a_config_error_at_its_address() {
    let mut bus = I2cMock::new(&[I2cT::write_read(0x76, vec![0xD0], vec![0x58])]);
    let provider = Arc::new(MockBuses { present: AtomicBool::new(true), i2c: Mutex::new(vec![bus.clone()]) });
    let r = check_with(broken("wrong-chip"), &Registry::builtin(), provider, Some(&fixture("rpi4")));
    assert!(!r.ok());
    let e = &r.errors[0];
    assert_eq!(e.key, "sensors[0].address");
    assert!(e.to_string().contains("chip id 0x60") && e.to_string().contains("found chip id 0x58"), "{e}");
    bus.done();
}

#[test]
fn a_failing_sensor_is_unhealthy_retried_with_backoff_and_recovers() {
    let cfg = BoardConfig::load(board("rpi4")).unwrap();
    let provider = Arc::new(MockBuses { present: AtomicBool::new(false), i2c: Mutex::new(Vec::new()) });
    let mut set = SensorSet::build_with(&cfg, &Registry::builtin(), provider.clone(), Some(&fixture("rpi4")));
    let st = set.sweep_at(Timestamp(0));
    let ambient = st.iter().find(|s| s.name == "ambient").unwrap();
    assert_eq!(ambient.health, Health::Unhealthy);
    assert!(ambient.fault.contains("/dev/i2c-1 is absent"), "{}", ambient.fault);
    // The probes on the fixture tree are fine meanwhile.
    let soc = set.get("soc").unwrap();
    assert_eq!(soc.health, Health::Healthy, "{soc}");
    assert_eq!(soc.reading.get(Quantity::Temperature).unwrap().value, 47.236);
    let failures = set.get("ambient").unwrap().failures;
    let first_retry = set.get("ambient").unwrap().due_at;
    // Not retried before its backoff; retried (and failing again, waiting longer) after it.
    set.sweep_at(Timestamp(first_retry.0 - 1));
    assert_eq!(set.get("ambient").unwrap().failures, failures);
    set.sweep_at(first_retry);
    let again = set.get("ambient").unwrap();
    assert_eq!(again.failures, failures + 1);
    assert!(again.due_at.0 - first_retry.0 > first_retry.0, "backoff grows");
    // The bus appears (the BME280 is plugged in): the next retry builds and reads it.
    let mut ex = vec![
        I2cT::write_read(0x76, vec![0xD0], vec![0x60]),
        I2cT::write(0x76, vec![0xE0, 0xB6]),
        I2cT::write_read(0x76, vec![0x88], vec![0; 26]),
        I2cT::write_read(0x76, vec![0xE1], vec![0; 7]),
        I2cT::write(0x76, vec![0xF2, 0x01]),
        I2cT::write(0x76, vec![0xF5, 0xA0]),
        I2cT::write(0x76, vec![0xF4, 0x27]),
    ];
    ex.push(I2cT::write_read(0x76, vec![0xF7], vec![0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x75, 0x30]));
    let mut bus = I2cMock::new(&ex);
    provider.i2c.lock().unwrap().push(bus.clone());
    provider.present.store(true, Ordering::SeqCst);
    let due = set.get("ambient").unwrap().due_at;
    set.sweep_at(due);
    let ok = set.get("ambient").unwrap();
    assert_eq!(ok.health, Health::Healthy, "{ok}");
    assert_eq!(ok.failures, 0);
    bus.done();
}

#[test]
fn sensors_on_this_machine_print_live_readings() {
    let cfg = BoardConfig::load(board("x86-dev")).unwrap();
    let mut set = SensorSet::build(&cfg);
    let now = set.now();
    set.sweep_at(now);
    for s in set.statuses() {
        println!("{s}");
    }
    let cpu = set.get("cpu").unwrap();
    assert_eq!(cpu.health, Health::Healthy, "{cpu}");
    assert!(cpu.to_string().contains("cpu_utilization[all]="), "{cpu}");
    assert_eq!(set.get("memory").unwrap().health, Health::Healthy);
    assert_eq!(set.get("net").unwrap().health, Health::Healthy);
}
