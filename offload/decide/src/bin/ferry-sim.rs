//! `ferry-sim`: replays traces against every policy and the oracle, prints one table per trace.
//!
//! `cargo run --release -p ferry-decide --bin ferry-sim -- [--board FILE] [--board-slowdown X] tests/traces/*.toml`
//! (and `tests/traces/recorded/*.toml`, the recorded links)
//!
//! `--board FILE` is the board profile (`ferry bench local --profile-out FILE` writes one; see
//! `tests/traces/boards/README.md`): every local and edge compute time, request and answer
//! size, the background-load slowdown and the throttle point come from it. Default: the
//! shipped `tests/traces/boards/legacy-constants.toml` (the former built-in figures). Its name goes
//! to stderr, so the tables of two boards compare line by line.
//!
//! `--board-slowdown X` makes the board's local compute X times slower than its profile
//! (the edge and the link stay as they are).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use ferry_decide::sim::{self, BoardProfile, Stats, TraceSpec};

const USAGE: &str = "usage: ferry-sim [--board FILE] [--board-slowdown X] TRACE.toml...";

fn row(s: &Stats, oracle_mean: f64) -> String {
    format!(
        "| {} | {:.1} | {:.1} | {} ({:.1} %) | {:.0} % | {:.0} % | {} | {:+.1} % |",
        s.policy,
        s.mean_ms,
        s.p95_ms,
        s.misses,
        100.0 * s.misses as f64 / s.requests.max(1) as f64,
        100.0 * s.offload_share,
        100.0 * s.wrong_path as f64 / s.requests.max(1) as f64,
        s.requests.saturating_sub(s.answers) + s.duplicate_answers,
        100.0 * (s.mean_ms / oracle_mean - 1.0),
    )
}

/// The options, then the trace paths.
struct Args {
    board: Option<String>,
    board_slowdown: f64,
    paths: Vec<String>,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1).peekable();
    let mut out = Args { board: None, board_slowdown: 1.0, paths: Vec::new() };
    while let Some(flag) = it.next_if(|a| a.starts_with("--")) {
        let value = it.next().with_context(|| format!("{flag} needs a value; {USAGE}"))?;
        match flag.as_str() {
            "--board" => out.board = Some(value),
            "--board-slowdown" => {
                out.board_slowdown = value
                    .parse::<f64>()
                    .ok()
                    .filter(|x| (1.0..=50.0).contains(x))
                    .ok_or_else(|| anyhow::anyhow!("--board-slowdown `{value}`: expected a number in 1..=50"))?;
            }
            _ => anyhow::bail!("unknown option {flag}; {USAGE}"),
        }
    }
    out.paths = it.collect();
    anyhow::ensure!(!out.paths.is_empty(), USAGE);
    Ok(out)
}

fn main() -> Result<()> {
    let Args { board, board_slowdown, paths } = args()?;
    let (board, from) = match &board {
        Some(file) => (BoardProfile::load(Path::new(file)).with_context(|| format!("board {file}"))?, file.as_str()),
        None => (BoardProfile::shipped_default().context("the shipped default board")?, "the shipped default"),
    };
    eprintln!("ferry-sim: board `{}` ({from})", board.board);
    let board = Arc::new(board);
    for path in &paths {
        // Step 1: read the seeded description and expand it into a timeline.
        // (A `[recorded]` trace also reads the recordings it names, relative to itself.)
        let mut spec = TraceSpec::load(Path::new(path)).with_context(|| format!("trace {path}"))?;
        spec.board = board.clone();
        spec.board_slowdown = board_slowdown;
        // Step 2: the oracle, then every policy over the same requests and draws.
        let rows = sim::table(&spec)?;
        let oracle = &rows[0];
        // Step 3: the table, and the two bars of issue 5.
        let slower = if board_slowdown == 1.0 { String::new() } else { format!(", board {board_slowdown}× slower") };
        println!("### {} — {} s, {} requests{slower}\n", spec.name, spec.duration_s, oracle.requests);
        println!("{}\n", spec.description.trim());
        println!("| policy | mean ms | p95 ms | deadline misses | offloaded | wrong path | lost | vs oracle |");
        println!("|---|---|---|---|---|---|---|---|");
        for s in &rows {
            println!("{}", row(s, oracle.mean_ms));
        }
        let adaptive = rows[1].mean_ms;
        let statics = &rows[sim::STATIC_ROWS..];
        let best_static = statics.iter().map(|s| s.mean_ms).fold(f64::INFINITY, f64::min);
        println!(
            "\nmixed (every static policy on the wrong path for ≥ {:.0} % of requests): {}\n\nadaptive vs oracle: {:+.1} % (bar: ≤ +10 %); vs best static ({:.1} ms): {:.1} % better (bar on mixed traces: ≥ 25 %)\n",
            100.0 * sim::MIXED_WRONG_SHARE,
            if sim::is_mixed(statics) { "yes" } else { "no" },
            100.0 * (adaptive / oracle.mean_ms - 1.0),
            best_static,
            100.0 * (1.0 - adaptive / best_static),
        );
    }
    Ok(())
}
