//! `ferry sensors`: live readings of the sensors a board config names.

use std::time::Duration;

use anyhow::Result;
use ferry_drivers::{BoardConfig, SensorSet};

use crate::cli::SensorsArgs;

/// Runs `ferry sensors`.
pub fn run(args: &SensorsArgs) -> Result<()> {
    let config = BoardConfig::load(&args.config.config)?;
    let mut sensors = SensorSet::build(&config);
    // The first sweep primes the rate counters (CPU utilization, network throughput).
    sensors.sweep();
    for _ in 0..args.count {
        std::thread::sleep(Duration::from_millis(args.interval_ms));
        for status in sensors.sweep() {
            println!("{status}");
        }
    }
    Ok(())
}
