//! `ferry-sim`: replays traces against every policy and the oracle, prints one table per trace.
//!
//! `cargo run --release -p ferry-offload --bin ferry-sim -- tests/traces/*.toml`

use anyhow::{Context, Result};
use ferry_offload::decide::sim::{self, Stats, TraceSpec};
use ferry_offload::decide::{policy_of, PolicyKind};

fn row(s: &Stats, oracle_mean: f64) -> String {
    format!(
        "| {} | {:.1} | {:.1} | {} ({:.1} %) | {:.0} % | {} | {:+.1} % |",
        s.policy,
        s.mean_ms,
        s.p95_ms,
        s.misses,
        100.0 * s.misses as f64 / s.requests.max(1) as f64,
        100.0 * s.offload_share,
        s.requests.saturating_sub(s.answers) + s.duplicate_answers,
        100.0 * (s.mean_ms / oracle_mean - 1.0),
    )
}

fn main() -> Result<()> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!paths.is_empty(), "usage: ferry-sim TRACE.toml...");
    for path in &paths {
        // Step 1: read the seeded description and expand it into a timeline.
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let spec = TraceSpec::from_toml(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let timeline = spec.timeline();
        // Step 2: the oracle, then every policy over the same requests and draws.
        let oracle = sim::oracle(&spec, &timeline);
        let mut rows = vec![oracle.clone()];
        for (kind, hedge) in [
            (PolicyKind::Adaptive, false),
            (PolicyKind::Adaptive, true),
            (PolicyKind::AlwaysLocal, false),
            (PolicyKind::AlwaysOffload, false),
            (PolicyKind::Threshold, false),
        ] {
            rows.push(sim::run(&spec, &timeline, policy_of(kind), hedge)?);
        }
        // Step 3: the table, and the two bars of issue 5.
        println!("### {} — {} s, {} requests\n", spec.name, spec.duration_s, oracle.requests);
        println!("{}\n", spec.description.trim());
        println!("| policy | mean ms | p95 ms | deadline misses | offloaded | lost | vs oracle |");
        println!("|---|---|---|---|---|---|---|");
        for s in &rows {
            println!("{}", row(s, oracle.mean_ms));
        }
        let adaptive = rows[1].mean_ms;
        let best_static = rows[3..].iter().map(|s| s.mean_ms).fold(f64::INFINITY, f64::min);
        println!(
            "\nadaptive vs oracle: {:+.1} % (bar: ≤ +10 %); vs best static ({:.1} ms): {:.1} % better (bar on mixed traces: ≥ 25 %)\n",
            100.0 * (adaptive / oracle.mean_ms - 1.0),
            best_static,
            100.0 * (1.0 - adaptive / best_static),
        );
    }
    Ok(())
}
