//! `ferry check`: validate a board config and print the device descriptor; starts nothing.

use anyhow::{bail, Result};

use crate::cli::ConfigArg;

/// Runs `ferry check`; fails (non-zero exit) when the config has errors.
pub fn run(args: &ConfigArg) -> Result<()> {
    let report = ferry_drivers::check(&args.config);
    println!("{report}");
    if let Some(descriptor) = &report.descriptor {
        println!("device descriptor: {descriptor:#?}");
    }
    if !report.ok() {
        bail!("{}: {} error(s)", args.config.display(), report.errors.len());
    }
    Ok(())
}
