//! The `ferry` command line. Each subcommand's arguments are one struct; the doc comments are
//! the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ferry_hal::Precision;

/// Ferry: runs inference on the board, or offloads it to an edge server when that is faster.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one model locally on images (or a raw tensor) and print the top classes and the time.
    Infer(InferArgs),
    /// Measure a model's accuracy on a labelled image set (the shared ImageNet validation
    /// images): FP32 and INT8 top-1/top-5 against the labels and INT8-vs-FP32 agreement, each
    /// with its 95 % interval, on a fixed seeded split.
    Eval(EvalArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Validate a board config without starting anything: every error at once (file, key, what
    /// was expected), absent bus devices as warnings, then the device descriptor; then load
    /// every model variant the agent would run on the board, naming any file that cannot be.
    Check(CheckArgs),
    /// Print live readings of the sensors and system probes a board config names.
    Sensors(SensorsArgs),
    /// Send one image to an edge server over MQTT/TLS and print its answer and timings.
    Offload(crate::commands::offload::OffloadArgs),
    /// Append numbered telemetry messages to a spool (for crash tests).
    #[command(hide = true)]
    TelemetryLoad(crate::commands::telemetry_load::TelemetryLoadArgs),
    /// The main job on an embedded default: an in-process broker and edge server, the agent
    /// behind an emulated link, EfficientNet-Lite0 requests while the link and CPU load change,
    /// once per policy; prints each phase and a summary (adaptive vs always-local/offload).
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Run the agent: the local API, the decision, the edge link and the sensors, until
    /// SIGTERM/SIGINT (SIGHUP re-reads the config). systemd: Type=notify with watchdog.
    Run(RunArgs),
}

/// A board config.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The board config (TOML), e.g. firmware-configs/rpi4.toml.
    #[arg(long, short = 'c', value_name = "FILE", default_value = "firmware-configs/x86-dev.toml")]
    pub config: PathBuf,
}

/// `ferry check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The board config.
    #[command(flatten)]
    pub board: ConfigArg,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelsArg,
}

/// `ferry demo`.
#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Requests per phase (5 phases, 3 policies, every round).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub per_phase: u32,
    /// Rounds: in each, every policy goes through every phase, the policies' order rotating.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Spacing between request starts, ms (0: back to back).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub interval_ms: u32,
    /// How many times slower than this machine the emulated board computes.
    #[arg(long, default_value_t = 4.0)]
    pub slowdown: f64,
    /// Each request's deadline, ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(10..=60_000))]
    pub deadline_ms: u32,
    /// Also write every request, the references and the summary's figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelsArg,
}

/// `ferry run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The agent config (TOML): device id, board config, API sockets, [mqtt], [decide].
    #[arg(long, short = 'c', value_name = "FILE", default_value = "/etc/ferry/agent.toml")]
    pub config: PathBuf,
}

/// `ferry sensors`.
#[derive(Debug, Args)]
pub struct SensorsArgs {
    /// The board config.
    #[command(flatten)]
    pub config: ConfigArg,
    /// How many sweeps to print (the first primes the rate counters and is not printed).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    /// Time between sweeps, ms.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub interval_ms: u64,
}

/// Where the models are.
#[derive(Debug, Clone, Args)]
pub struct ModelsArg {
    /// The model folder (default: $FERRY_MODELS, ./models, or the source tree's models/).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
}

/// `ferry infer`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// The model, by name (a folder of the model store).
    #[arg(long, default_value = "efficientnet-lite0")]
    pub model: String,
    /// The variant to run.
    #[arg(long, default_value = "int8", value_parser = parse_precision)]
    pub precision: Precision,
    /// How many classes to print.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub top: u16,
    /// Threads for tract's matrix products.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// A raw input tensor instead of images: a file of little-endian f32 values, already normalised.
    #[arg(long, value_name = "FILE", conflicts_with = "images")]
    pub tensor: Option<PathBuf>,
    /// The raw tensor's shape, e.g. 1,1,8,8 (default: the model's input shape).
    #[arg(long, value_delimiter = ',', requires = "tensor")]
    pub shape: Option<Vec<usize>>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelsArg,
    /// PNG or JPEG images (default: the bundled cat picture).
    pub images: Vec<PathBuf>,
}

/// `ferry eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model, by name (a folder of the model store).
    #[arg(long, default_value = "efficientnet-lite0")]
    pub model: String,
    /// The labelled set: a folder with `labels.csv` and `images/` (default: $FERRY_EVAL_DATA,
    /// else `../shared/eval/imagenet-val-650` beside the repository the models are in).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which part of the fixed split (seed and sizes: `ferry_runtime::eval::Split`).
    #[arg(long, default_value = "evaluation", value_parser = ["evaluation", "calibration", "all"])]
    pub split: String,
    /// Only the first N images of that part (a quick look; the figures say so).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
    /// Threads for tract's matrix products.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// The input forms to price (the FP32 model on each, against it on the original image):
    /// `original`, `jpegQ` (shaped to the model's input, JPEG at quality Q, 1–100), `int8-tensor`.
    #[arg(long, value_delimiter = ',', default_value = "original,jpeg95,jpeg85,jpeg75,jpeg50,int8-tensor", value_parser = parse_form)]
    pub forms: Vec<ferry_runtime::forms::Form>,
    /// Only FP32 (the reference and the forms), not the other variants the manifest ships.
    #[arg(long)]
    pub fp32_only: bool,
    /// Also price every candidate cut of split inference (`ferry_runtime::split`): the head,
    /// the crossing tensor quantized to bytes, the tail, against the whole FP32 model.
    #[arg(long)]
    pub splits: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelsArg,
}

fn parse_form(s: &str) -> Result<ferry_runtime::forms::Form, String> {
    s.parse()
}

/// `ferry bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Local inference latency of each model in FP32 and INT8, interleaved after warm-up: mean,
    /// σ, p50, p95, load time and peak RSS (each variant measured alone in a child process);
    /// with --profile-out, also a board profile for ferry-sim.
    Local(BenchLocalArgs),
}

/// `ferry bench local`.
#[derive(Debug, Args)]
pub struct BenchLocalArgs {
    /// Models to measure (repeatable; default: every model in the store).
    #[arg(long = "model")]
    pub models_to_run: Vec<String>,
    /// Timed runs per variant.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub iterations: u32,
    /// Untimed runs per variant first.
    #[arg(long, default_value_t = 5)]
    pub warmup: u32,
    /// Threads for tract's matrix products.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Print one JSON object per variant instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write a board profile for ferry-sim (TOML) to FILE: runs every model at 1 and at 2
    /// threads (instead of --threads), measures the background-load slowdown with every core
    /// busy, and computes request and answer sizes from the bundled images (see
    /// tests/traces/boards/README.md). Needs both models, both precisions, and --throttle-c.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["threads", "json"], requires = "throttle_c")]
    pub profile_out: Option<PathBuf>,
    /// The profile's board name (default: FILE's name without extension).
    #[arg(long, requires = "profile_out")]
    pub board_name: Option<String>,
    /// Where this board's SoC throttles, °C, for the profile: bench local cannot measure it (it
    /// is the board's firmware limit, e.g. [thermal] throttle_point_c in firmware-configs/).
    #[arg(long, value_name = "CELSIUS", requires = "profile_out", value_parser = parse_celsius)]
    pub throttle_c: Option<f64>,
    /// Internal: load one variant, run it, print its peak RSS and exit (used by the benchmark
    /// to measure each variant's memory alone).
    #[arg(long, hide = true, num_args = 2, value_names = ["MODEL", "PRECISION"])]
    pub rss_child: Option<Vec<String>>,
    /// Where the models are.
    #[command(flatten)]
    pub models: ModelsArg,
}

fn parse_celsius(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|c| c.is_finite() && *c > 0.0 && *c <= 150.0).ok_or_else(|| "expected °C in (0, 150]".into())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse::<Precision>().map_err(|e| e.to_string())
}
