//! One module per subcommand; [`run`] dispatches a parsed command line.

use anyhow::Result;
use ferry_runtime::ModelStore;

use crate::cli::{BenchCommand, Cli, Command, ModelsArg};

pub mod bench_local;
pub mod check;
#[cfg(feature = "demo")]
pub mod demo;
pub mod eval;
pub mod infer;
pub mod offload;
pub mod run;
pub mod sensors;
pub mod telemetry_load;

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Infer(args) => infer::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Bench(BenchCommand::Local(args)) => bench_local::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Sensors(args) => sensors::run(&args),
        Command::Offload(args) => offload::run(&args),
        Command::TelemetryLoad(args) => telemetry_load::run(&args),
        Command::Run(args) => run::run(&args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(&args),
    }
}

/// The model store named on the command line, or the discovered default.
pub fn store(arg: &ModelsArg) -> ModelStore {
    arg.models.clone().map(ModelStore::new).unwrap_or_else(ModelStore::discover)
}
