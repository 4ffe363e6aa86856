//! `ferry-sim`: replays traces against every policy and the oracle, prints one table per trace.
//!
//! `cargo run --release -p ferry-decide --bin ferry-sim -- [--board-slowdown X] tests/traces/*.toml`
//! (and `tests/traces/recorded/*.toml`, the recorded links)
//!
//! `--board-slowdown X` makes the simulated board's local compute X times slower than the
//! profile measured on the development VM (4 ≈ a Raspberry Pi 4; see BENCHMARKS.md).

use std::path::Path;

use anyhow::{Context, Result};
use ferry_decide::sim::{self, Stats, TraceSpec};

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

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let mut board_slowdown = 1.0;
    if args.peek().is_some_and(|a| a == "--board-slowdown") {
        args.next();
        let v = args.next().unwrap_or_default();
        board_slowdown = v
            .parse::<f64>()
            .ok()
            .filter(|x| (1.0..=50.0).contains(x))
            .ok_or_else(|| anyhow::anyhow!("--board-slowdown `{v}`: expected a number in 1..=50"))?;
    }
    let paths: Vec<String> = args.collect();
    anyhow::ensure!(!paths.is_empty(), "usage: ferry-sim [--board-slowdown X] TRACE.toml...");
    for path in &paths {
        // Step 1: read the seeded description and expand it into a timeline.
        // (A `[recorded]` trace also reads the recordings it names, relative to itself.)
        let mut spec = TraceSpec::load(Path::new(path)).with_context(|| format!("trace {path}"))?;
        spec.board_slowdown = board_slowdown;
        // Step 2: the oracle, then every policy over the same requests and draws.
        let rows = sim::table(&spec)?;
        let oracle = &rows[0];
        // Step 3: the table, and the two bars of issue 5.
        let board = if board_slowdown == 1.0 { String::new() } else { format!(", board {board_slowdown}× slower") };
        println!("### {} — {} s, {} requests{board}\n", spec.name, spec.duration_s, oracle.requests);
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
