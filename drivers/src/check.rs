//! `ferry check`: read a board config, report every error and every warning, start nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_hal::DeviceDescriptor;

use crate::config::{BoardConfig, ConfigError};
use crate::bus::linux::{BusProvider, LinuxBuses};
use crate::driver::{BuildError, Context};
use crate::registry::Registry;

/// Something that will not stop the agent but that a person should know (a bus device absent
/// on this machine, a probe with nothing to read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The config file.
    pub file: PathBuf,
    /// The key it is about, e.g. `sensors[0]`.
    pub key: String,
    /// What is the matter.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}", self.file.display(), self.key, self.message)
    }
}

/// What `ferry check` found.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The config file.
    pub file: PathBuf,
    /// Errors: the config is wrong. Non-empty means `ferry check` exits non-zero.
    pub errors: Vec<ConfigError>,
    /// Warnings: the config is right but this machine lacks something.
    pub warnings: Vec<Warning>,
    /// The device descriptor the agent would publish (None when the config did not load).
    pub descriptor: Option<DeviceDescriptor>,
    /// The sensors the config declares: (name, driver), in order.
    pub sensors: Vec<(String, String)>,
}

impl CheckReport {
    /// True when there are no errors (warnings allowed).
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for CheckReport {
    /// `error: ...` lines, `warning: ...` lines, then a summary line:
    /// `firmware-configs/rpi4.toml: ok (6 sensors, 2 warnings)` or
    /// `firmware-configs/bad.toml: 3 errors, 0 warnings`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        if self.ok() {
            write!(
                f,
                "{}: ok ({}, {})",
                self.file.display(),
                plural(self.sensors.len(), "sensor"),
                plural(self.warnings.len(), "warning")
            )
        } else {
            write!(
                f,
                "{}: {}, {}",
                self.file.display(),
                plural(self.errors.len(), "error"),
                plural(self.warnings.len(), "warning")
            )
        }
    }
}

/// Checks `path` with the built-in drivers against this machine's devices.
pub fn check(path: impl AsRef<Path>) -> CheckReport {
    check_with(path, &Registry::builtin(), Arc::new(LinuxBuses), None)
}

/// Checks `path` with `registry` and `provider`; `root` overrides the config's `board.root`
/// (tests point it at a fixture tree).
pub fn check_with(
    path: impl AsRef<Path>,
    registry: &Registry,
    provider: Arc<dyn BusProvider>,
    root: Option<&Path>,
) -> CheckReport {
    let path = path.as_ref();
    let mut report =
        CheckReport { file: path.to_path_buf(), errors: Vec::new(), warnings: Vec::new(), descriptor: None, sensors: Vec::new() };
    let config = match BoardConfig::load_with(path, registry) {
        Ok(c) => c,
        Err(e) => {
            report.errors = e.0;
            return report;
        }
    };
    let root = root.map_or_else(|| config.board.root.clone(), Path::to_path_buf);
    let ctx = Context { root: root.clone(), buses: config.buses.clone().into(), provider };
    for s in &config.sensors {
        report.sensors.push((s.name.clone(), s.driver.clone()));
        let Some(driver) = registry.get(&s.driver) else { continue };
        let key = s.key();
        match driver.check(&s.params, &ctx) {
            Ok(()) => {}
            Err(BuildError::Mismatch { key: k, expected, found }) => report.errors.push(ConfigError {
                file: path.to_path_buf(),
                key: format!("{key}.{k}"),
                expected,
                found: Some(found),
            }),
            Err(e) => report.warnings.push(Warning {
                file: path.to_path_buf(),
                key,
                message: format!("sensor `{}` ({}): {e}; it will be unhealthy until this is fixed", s.name, s.driver),
            }),
        }
    }
    if !crate::describe::zone_exists(&root, &config.thermal.zone) {
        report.warnings.push(Warning {
            file: path.to_path_buf(),
            key: "thermal.zone".into(),
            message: format!(
                "no thermal zone of type `{}` under {}; thermal throttling will not be predicted",
                config.thermal.zone,
                root.join("sys/class/thermal").display()
            ),
        });
    }
    report.descriptor = Some(crate::describe::describe(&config, &root));
    report
}
