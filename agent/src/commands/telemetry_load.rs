//! `ferry telemetry-load` (hidden): appends numbered telemetry messages to a spool and
//! prints `committed <seq> <n>` after each append returns, so a test can kill it (SIGKILL)
//! mid-spool and check that everything it reported is still there afterwards.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use ferry_protocol::DeviceId;

use crate::telemetry::{schema, Telemetry, TelemetryConfig};

/// `ferry telemetry-load`.
#[derive(Debug, Args)]
pub struct TelemetryLoadArgs {
    /// The spool directory.
    #[arg(long, value_name = "DIR")]
    pub spool: PathBuf,
    /// How many messages to append.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// The device id in the messages and topics.
    #[arg(long, default_value = "dev-1")]
    pub device: String,
    /// The first message number (`data.n`).
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Segment file size, bytes.
    #[arg(long, default_value_t = 4096)]
    pub segment_bytes: u64,
    /// fsync every N ms (0: every message).
    #[arg(long, default_value_t = 0)]
    pub fsync_interval_ms: u64,
}

/// Runs `ferry telemetry-load`.
pub fn run(args: &TelemetryLoadArgs) -> Result<()> {
    let device = DeviceId::new(&args.device)
        .map_err(|e| anyhow::anyhow!("device id {:?}: {e}", args.device))?;
    let config = TelemetryConfig {
        spool_dir: args.spool.clone(),
        segment_bytes: args.segment_bytes,
        max_spool_bytes: 1 << 30,
        fsync_interval_ms: args.fsync_interval_ms,
        ..TelemetryConfig::default()
    };
    let telemetry = Telemetry::open(&config, device).context("opening the spool")?;
    let mut out = std::io::stdout().lock();
    for n in args.start..args.start + args.count {
        let mut data = schema::SensorData::default();
        data.values.insert("load.n".into(), n as f64);
        let seq = telemetry.send_sensors(&data)?;
        writeln!(out, "committed {seq} {n}")?;
        out.flush()?;
    }
    Ok(())
}
