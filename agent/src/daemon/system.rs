//! From sensor readings to the decider's view of the system: other processes' CPU load, the
//! clock ratio (throttling), the SoC temperature.

use std::time::Instant;

use ferry_drivers::SensorStatus;
use ferry_hal::Quantity;
use ferry_decide::SystemState;

/// Tracks this process's own CPU time, so that the load of *other* processes can be told apart.
#[derive(Debug)]
pub struct OwnCpu {
    last: Option<(Instant, f64)>,
    cores: f64,
    ticks_per_s: f64,
}

impl Default for OwnCpu {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        // USER_HZ is 100 on every Linux architecture Ferry targets.
        Self { last: None, cores, ticks_per_s: 100.0 }
    }
}

impl OwnCpu {
    /// This process's share of the whole machine since the last call, 0..=1.
    pub fn share(&mut self) -> f64 {
        let Some(ticks) = own_ticks() else { return 0.0 };
        let now = Instant::now();
        let share = match self.last {
            Some((t, prev)) => {
                let wall = now.duration_since(t).as_secs_f64();
                if wall > 0.0 {
                    ((ticks - prev) / self.ticks_per_s / wall / self.cores).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, ticks));
        share
    }
}

/// utime + stime of this process, in clock ticks, from `/proc/self/stat`.
fn own_ticks() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: the fields we want follow its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The latest readings as flat telemetry values: `"<sensor>.<quantity>"`, with `[<label>]` for
/// labelled channels.
pub fn sensor_data(statuses: &[SensorStatus]) -> crate::telemetry::SensorData {
    let mut values = std::collections::BTreeMap::new();
    for s in statuses.iter().filter(|s| s.has_reading) {
        for sample in s.reading.samples.iter() {
            let key = if sample.label.is_empty() {
                format!("{}.{}", s.name, sample.quantity.as_str())
            } else {
                format!("{}.{}[{}]", s.name, sample.quantity.as_str(), sample.label.as_str())
            };
            values.insert(key, sample.value);
        }
    }
    crate::telemetry::SensorData { values }
}

/// The decider's system state from the latest sweep; `own_share` is this process's CPU share,
/// `hw_max_hz` the CPU's hardware maximum clock (from the board description), if known.
///
/// The clock ratio is the cap the kernel allows now over the hardware maximum: that is what
/// thermal or power throttling lowers, and what an inference that keeps a core busy runs at.
/// The current clock is not used: at idle the governor lowers it, which is not throttling.
pub fn system_state(statuses: &[SensorStatus], own_share: f64, thermal_zone: &str, hw_max_hz: Option<f64>) -> SystemState {
    let mut state = SystemState::default();
    let readings = || statuses.iter().filter(|s| s.has_reading).map(|s| &s.reading);
    if let Some(total) = readings().find_map(|r| r.get_labelled(Quantity::CpuUtilization, "all").or_else(|| r.get(Quantity::CpuUtilization))) {
        state.cpu_load = (total.value / 100.0 - own_share).max(0.0);
    }
    let temp = readings().find_map(|r| r.get_labelled(Quantity::Temperature, thermal_zone)).or_else(|| readings().find_map(|r| r.get(Quantity::Temperature)));
    if let Some(t) = temp {
        state.temp_c = t.value;
    }
    let limit = readings().find_map(|r| r.get(Quantity::CpuFrequencyLimit));
    if let (Some(l), Some(max)) = (limit, hw_max_hz.filter(|m| *m > 0.0)) {
        state.freq_ratio = (l.value / max).min(1.0);
    }
    state.sanitized()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_share_is_a_fraction() {
        let mut own = OwnCpu::default();
        let _ = own.share();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let s = own.share();
        assert!((0.0..=1.0).contains(&s), "{s}");
    }

    #[test]
    fn no_readings_give_the_default_state() {
        assert_eq!(system_state(&[], 0.0, "cpu-thermal", Some(1.5e9)), SystemState::default().sanitized());
    }

    fn cpufreq(cur_hz: f64, limit_hz: f64) -> SensorStatus {
        let mut reading = ferry_hal::Reading::new(ferry_hal::Timestamp(0));
        reading.push(Quantity::CpuFrequency, "cpu0", cur_hz, ferry_hal::Unit::Hertz);
        reading.push(Quantity::CpuFrequencyLimit, "cpu0", limit_hz, ferry_hal::Unit::Hertz);
        SensorStatus {
            name: "cpufreq".to_string(),
            driver: "cpufreq".to_string(),
            interval_ms: 1000,
            health: ferry_drivers::Health::Healthy,
            reading,
            has_reading: true,
            fault: ferry_drivers::registry::Fault::new(),
            failures: 0,
            due_at: ferry_hal::Timestamp(0),
        }
    }

    #[test]
    fn the_clock_ratio_is_the_cap_over_the_hardware_maximum() {
        // An idle core clocked down by the governor is not throttled.
        let idle = system_state(&[cpufreq(600e6, 1.5e9)], 0.0, "cpu-thermal", Some(1.5e9));
        assert_eq!(idle.freq_ratio, 1.0);
        // A cap lowered to 1.2 of 1.5 GHz is: compute runs at most 0.8 as fast.
        let capped = system_state(&[cpufreq(600e6, 1.2e9)], 0.0, "cpu-thermal", Some(1.5e9));
        assert!((capped.freq_ratio - 0.8).abs() < 1e-9, "{}", capped.freq_ratio);
        // Without a known hardware maximum there is nothing to compare the cap with.
        assert_eq!(system_state(&[cpufreq(600e6, 1.2e9)], 0.0, "cpu-thermal", None).freq_ratio, 1.0);
    }
}
