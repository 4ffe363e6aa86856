//! The `ferry` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use ferry_agent::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    ferry_agent::logging::init(cli.verbose);
    match ferry_agent::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
