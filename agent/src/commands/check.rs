//! `ferry check`: validate a board config and print the device descriptor, then load every
//! model variant the agent would run on that board (the same rules as `ferry run`: the
//! board's targets and models, less the variants the manifests' accuracy bounds exclude), so a
//! missing, truncated or corrupt model file is reported, by name, before anything starts.

use std::path::Path;

use anyhow::{bail, Result};
use ferry_decide::config::TargetConfig;
use ferry_decide::DecideConfig;
use ferry_drivers::BoardConfig;
use ferry_runtime::{ModelStore, Threads, TractEngine};

use crate::cli::CheckArgs;
use crate::daemon::{accuracy, targets};

/// Runs `ferry check`; fails (non-zero exit) when the config has errors or a model it needs
/// cannot be loaded.
pub fn run(args: &CheckArgs) -> Result<()> {
    let path = &args.board.config;
    let report = ferry_drivers::check(path);
    println!("{report}");
    if let Some(descriptor) = &report.descriptor {
        println!("device descriptor: {descriptor:#?}");
    }
    if !report.ok() {
        bail!("{}: {} error(s)", path.display(), report.errors.len());
    }
    let errors = check_models(path, &super::store(&args.models));
    if !errors.is_empty() {
        bail!(
            "{}: {} model variant(s) cannot be loaded: {}",
            path.display(),
            errors.len(),
            errors.join("; ")
        );
    }
    Ok(())
}

/// Loads every local variant `ferry run` would load for the board at `board_path` from
/// `store`, one line each on stdout; what failed, each naming its file.
fn check_models(board_path: &Path, store: &ModelStore) -> Vec<String> {
    let board = match BoardConfig::load(board_path) {
        Ok(b) => b,
        Err(e) => return vec![e.to_string()],
    };
    let mut config = targets::decide_config(&board, &DecideConfig::default(), true);
    accuracy::enforce(&mut config, store);
    if let Err(e) = accuracy::offer_forms(&mut config, store) {
        return vec![format!("{}: {e}", board.path.display())];
    }
    for f in &config.forms {
        println!("form {} {}: offered to the edge ({} B, {:.1} ms to make, before measurement)", f.model, f.name, f.up_bytes, f.encode_ms);
    }
    let engine = TractEngine::new(Threads(1));
    let mut errors = Vec::new();
    for t in &config.targets {
        let TargetConfig::Local(l) = t else { continue };
        match store.load(&engine, &l.model, l.precision) {
            Ok(_) => println!("model {} {} ({}): ok", l.model, l.precision, l.name),
            Err(e) => {
                println!("model {} {} ({}): error: {e}", l.model, l.precision, l.name);
                errors.push(e.to_string());
            }
        }
    }
    errors
}
