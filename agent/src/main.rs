//! The `ferry` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use ferry_agent::cli::Cli;

fn main() -> ExitCode {
    // Before any other thread: every arena then follows the fixed thresholds.
    let tuned = ferry_agent::malloc::tune();
    let cli = Cli::parse();
    ferry_agent::logging::init(cli.verbose);
    tracing::debug!(?tuned, "malloc thresholds");
    match ferry_agent::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
