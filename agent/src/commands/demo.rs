//! `ferry demo`.

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::DemoArgs;
use crate::demo::{self, DemoOptions};

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<()> {
    if !(1.0..=50.0).contains(&args.slowdown) {
        bail!("--slowdown {}: expected 1.0..=50.0", args.slowdown);
    }
    let store = super::store(&args.models);
    let models = std::fs::canonicalize(store.dir())
        .with_context(|| format!("{}: the model folder", store.dir().display()))?;
    let opts = DemoOptions {
        per_phase: args.per_phase,
        rounds: args.rounds,
        interval_ms: args.interval_ms,
        slowdown: args.slowdown,
        deadline_ms: args.deadline_ms,
        models,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("async runtime")?;
    let report = runtime
        .block_on(demo::run(&opts))
        .map_err(|e| anyhow!("demo: {e}"))?;
    if let Some(path) = &args.record {
        let json = serde_json::to_string_pretty(&report).context("the demo's record as JSON")?;
        std::fs::write(path, json)
            .with_context(|| format!("{}: writing the demo's record", path.display()))?;
    }
    Ok(())
}
