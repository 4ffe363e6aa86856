//! The configured sensors, built and swept together. A sensor that fails is marked unhealthy
//! and retried with exponential backoff; nothing a sensor does takes the agent down.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use ferry_hal::{Reading, Timestamp};

use crate::bus::dynbus::truncated;
use crate::config::{BoardConfig, SensorConfig};
use crate::bus::linux::{BusProvider, LinuxBuses};
use crate::driver::{Context, DynSensor, ErasedDriver, Fault};
use crate::registry::Registry;

/// First retry after a failure, ms; doubled per consecutive failure up to [`MAX_BACKOFF_MS`].
pub const BASE_BACKOFF_MS: u64 = 1_000;
/// The longest wait between retries, ms.
pub const MAX_BACKOFF_MS: u64 = 60_000;

/// How a sensor is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not read yet.
    Pending,
    /// The last read succeeded.
    Healthy,
    /// The last read (or the build) failed; retried at `retry_at`.
    Unhealthy,
}

/// One sensor's latest state, as `ferry sensors` prints it.
#[derive(Debug, Clone)]
pub struct SensorStatus {
    /// The sensor's config name.
    pub name: String,
    /// Its driver.
    pub driver: String,
    /// Read interval, ms.
    pub interval_ms: u64,
    /// Health.
    pub health: Health,
    /// The latest successful reading (kept while unhealthy, with its old timestamp).
    pub reading: Reading,
    /// True once `reading` holds a successful read.
    pub has_reading: bool,
    /// Why it is unhealthy.
    pub fault: Fault,
    /// Consecutive failures.
    pub failures: u32,
    /// When it is next read (or retried).
    pub due_at: Timestamp,
}

impl fmt::Display for SensorStatus {
    /// `cpu          cpu        ok        cpu_utilization[all]=12.5%  ...` or
    /// `ambient      bme280     UNHEALTHY (3 failures, retry at 7.0s): bus `i2c1`: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<12} {:<11} ", self.name, self.driver)?;
        match self.health {
            Health::Pending => f.write_str("pending"),
            Health::Healthy => write!(f, "ok        {}", self.reading),
            Health::Unhealthy => write!(
                f,
                "UNHEALTHY ({} failure{}, retry at {:.1}s): {}",
                self.failures,
                if self.failures == 1 { "" } else { "s" },
                self.due_at.as_millis() as f64 / 1000.0,
                self.fault
            ),
        }
    }
}

struct Entry {
    sensor: Option<Box<dyn DynSensor>>,
    driver: Arc<dyn ErasedDriver>,
    params: toml::Table,
}

/// The built sensors of a board.
pub struct SensorSet {
    entries: Vec<Entry>,
    status: Vec<SensorStatus>,
    ctx: Context,
    clock: Instant,
}

impl SensorSet {
    /// Builds every sensor of `config` on this machine's buses and `board.root`.
    pub fn build(config: &BoardConfig) -> SensorSet {
        Self::build_with(config, &Registry::builtin(), Arc::new(LinuxBuses), None)
    }

    /// Builds with `registry` and `provider`; `root` overrides `board.root`. A sensor that
    /// cannot be built is kept, unhealthy, and its build retried with backoff.
    pub fn build_with(
        config: &BoardConfig,
        registry: &Registry,
        provider: Arc<dyn BusProvider>,
        root: Option<&std::path::Path>,
    ) -> SensorSet {
        let ctx = Context {
            root: root.map_or_else(|| config.board.root.clone(), |r| r.to_path_buf()),
            buses: config.buses.clone().into(),
            provider,
        };
        let mut set = SensorSet { entries: Vec::new(), status: Vec::new(), ctx, clock: Instant::now() };
        for s in &config.sensors {
            // Load validated every driver name; an unknown one here means a foreign registry.
            let Some(driver) = registry.get(&s.driver) else { continue };
            set.push(s, driver.clone());
        }
        set
    }

    fn push(&mut self, s: &SensorConfig, driver: Arc<dyn ErasedDriver>) {
        let mut status = SensorStatus {
            name: s.name.clone(),
            driver: s.driver.clone(),
            interval_ms: s.interval_ms,
            health: Health::Pending,
            reading: Reading::default(),
            has_reading: false,
            fault: Fault::new(),
            failures: 0,
            due_at: Timestamp(0),
        };
        let sensor = match driver.build(&s.params, &self.ctx) {
            Ok(sensor) => Some(sensor),
            Err(e) => {
                tracing::warn!(sensor = %s.name, driver = %s.driver, error = %e, "sensor unavailable; will retry");
                fail(&mut status, Timestamp(0), truncated(&e));
                None
            }
        };
        self.entries.push(Entry { sensor, driver, params: s.params.clone() });
        self.status.push(status);
    }

    /// Milliseconds since the set was built: the clock readings are stamped with.
    pub fn now(&self) -> Timestamp {
        Timestamp(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads every sensor that is due now. See [`sweep_at`](Self::sweep_at).
    pub fn sweep(&mut self) -> &[SensorStatus] {
        let now = self.now();
        self.sweep_at(now)
    }

    /// Reads every sensor whose interval (or retry backoff) has elapsed at `now`. A healthy
    /// sweep does not allocate; a failed read records its fault in a fixed buffer. A sensor
    /// that could not be built is rebuilt when its retry is due (that allocates, rarely).
    pub fn sweep_at(&mut self, now: Timestamp) -> &[SensorStatus] {
        for (e, st) in self.entries.iter_mut().zip(self.status.iter_mut()) {
            if now < st.due_at {
                continue;
            }
            if e.sensor.is_none() {
                match e.driver.build(&e.params, &self.ctx) {
                    Ok(s) => e.sensor = Some(s),
                    Err(err) => {
                        fail(st, now, truncated(&err));
                        continue;
                    }
                }
            }
            let Some(sensor) = e.sensor.as_mut() else { continue };
            match sensor.read(now) {
                Ok(r) => {
                    st.reading = r;
                    st.has_reading = true;
                    st.health = Health::Healthy;
                    st.failures = 0;
                    st.fault.clear();
                    st.due_at = Timestamp(now.as_millis().saturating_add(st.interval_ms));
                }
                Err(fault) => fail(st, now, fault),
            }
        }
        &self.status
    }

    /// Every sensor's latest state, in config order.
    pub fn statuses(&self) -> &[SensorStatus] {
        &self.status
    }

    /// The status of the sensor named `name`.
    pub fn get(&self, name: &str) -> Option<&SensorStatus> {
        self.status.iter().find(|s| s.name == name)
    }
}

fn fail(st: &mut SensorStatus, now: Timestamp, fault: Fault) {
    st.health = Health::Unhealthy;
    st.failures = st.failures.saturating_add(1);
    st.fault = fault;
    let backoff = BASE_BACKOFF_MS.saturating_mul(1u64 << (st.failures - 1).min(16)).min(MAX_BACKOFF_MS);
    st.due_at = Timestamp(now.as_millis().saturating_add(backoff));
}
