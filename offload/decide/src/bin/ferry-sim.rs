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
//!
//! `--forms` prints, instead, per trace, always-local, always-offload (the original),
//! adaptive sending the original and adaptive choosing the input's form among the original
//! and the board profile's shaped forms, with the share of offloads sent in each form;
//! `--sweep-uplink` prints where each option wins on a steady link from 0.5 to 100 Mbit/s
//! (with the first trace's requests and deadline), and adaptive with shaping there.
//!
//! `--load none` replaces every trace's `[[device]]` phases with an idle device (no background
//! load, 55 °C); the link, the edge and the requests stay the same. Default `--load trace`: the
//! trace's own background-load schedule.
//!
//! Each table has the per-request oracle (an idle runner and link for every request) and the
//! hindsight reference (a greedy schedule over the real timeline that pays for its own queues,
//! `sim::reference`: `reference` does not run a request no path can finish in time,
//! `reference-run-all` runs every one), then the policies. "vs oracle" compares the mean over
//! every answer with the oracle's; "vs reference" the mean over the answers in time with
//! `reference`'s. The oracle's bar applies where `reference-run-all` hardly queues
//! (`sim::oracle_is_valid`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use ferry_decide::sim::reference::Admission;
use ferry_decide::sim::{self, BoardProfile, Stats, TraceSpec};

const USAGE: &str = "usage: ferry-sim [--board FILE] [--board-slowdown X] [--load trace|none] [--forms | --sweep-uplink] TRACE.toml...";

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// Every policy and the references, with the bars.
    Policies,
    /// Sending the original against shaped forms ([`sim::shaping::forms_table`]).
    Forms,
    /// Where each option wins as the uplink varies ([`sim::shaping::uplink_sweep`]).
    Sweep,
}

/// The uplink rates of `--sweep-uplink`, Mbit/s.
const SWEEP_MBPS: [f64; 11] = [0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 35.0, 60.0, 100.0];
/// The RTT of `--sweep-uplink`'s steady link, ms.
const SWEEP_RTT_MS: f64 = 30.0;

const HEADER: &str = "| policy | mean ms | p95 ms | deadline misses | offloaded | wrong path | lost | vs oracle | deadline met | in time: mean ms | in time: p95 ms | vs reference | latest past deadline ms | duplicated | probes | probe B/s |";

/// `x / of − 1` as a signed percentage, or "—" when `of` is 0 (nothing in time to compare).
fn ratio(x: f64, of: f64) -> String {
    if of > 0.0 {
        format!("{:+.1} %", 100.0 * (x / of - 1.0))
    } else {
        "—".to_owned()
    }
}

fn row(s: &Stats, oracle: &Stats, reference: &Stats) -> String {
    let share = |k: usize| 100.0 * k as f64 / s.requests.max(1) as f64;
    format!(
        "| {} | {:.1} | {:.1} | {} ({:.1} %) | {:.0} % | {:.0} % | {} | {} | {:.1} % | {:.1} | {:.1} | {} | {:.0} | {} | {} | {:.0} |",
        s.policy,
        s.mean_ms,
        s.p95_ms,
        s.misses,
        share(s.misses),
        100.0 * s.offload_share,
        share(s.wrong_path),
        s.lost(),
        ratio(s.mean_ms, oracle.mean_ms),
        100.0 * s.deadline_met_share(),
        s.in_time_mean_ms,
        s.in_time_p95_ms,
        ratio(s.in_time_mean_ms, reference.in_time_mean_ms),
        s.max_late_ms,
        s.duplicate_answers,
        s.probes,
        s.probe_bytes_per_s(),
    )
}

/// The options, then the trace paths.
struct Args {
    board: Option<String>,
    board_slowdown: f64,
    idle: bool,
    report: Report,
    paths: Vec<String>,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1).peekable();
    let mut out = Args { board: None, board_slowdown: 1.0, idle: false, report: Report::Policies, paths: Vec::new() };
    while let Some(flag) = it.next_if(|a| a.starts_with('-')) {
        if flag == "--forms" || flag == "--sweep-uplink" {
            anyhow::ensure!(out.report == Report::Policies, "--forms and --sweep-uplink are one report each; {USAGE}");
            out.report = if flag == "--forms" { Report::Forms } else { Report::Sweep };
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}\n\nReplays each trace with the oracle, every policy and the two hindsight references; prints one table per trace and whether issue 13's bars are met.\n  --board FILE         a board profile (tests/traces/boards/*.toml); default: the shipped one\n  --board-slowdown X   local compute X times slower (1..=50)\n  --load trace|none    the trace's background load, or an idle device\n  --forms              the original against shaped inputs, per trace\n  --sweep-uplink       where each option wins on a steady link, 0.5..100 Mbit/s up");
            std::process::exit(0);
        }
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
            "--load" => {
                out.idle = match value.as_str() {
                    "trace" => false,
                    "none" => true,
                    _ => anyhow::bail!("--load `{value}`: expected `trace` (the trace's own) or `none` (an idle device)"),
                }
            }
            _ => anyhow::bail!("unknown option {flag}; {USAGE}"),
        }
    }
    out.paths = it.collect();
    anyhow::ensure!(!out.paths.is_empty(), USAGE);
    Ok(out)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// The lines under a table: which reference each bar uses, and whether it is met.
fn bars(rows: &[Stats], reference: &Stats, run_all: &Stats) -> String {
    let (oracle, adaptive) = (&rows[0], &rows[1]);
    let statics = &rows[sim::STATIC_ROWS..];
    let valid = sim::oracle_is_valid(run_all);
    let queued = 100.0 * run_all.queued as f64 / run_all.requests.max(1) as f64;
    let vs_oracle = adaptive.mean_ms / oracle.mean_ms - 1.0;
    let oracle_line = if valid {
        format!(
            "per-request oracle valid here (reference-run-all made {queued:.1} % of requests wait, ≤ {:.0} %): adaptive vs oracle, mean over every answer, {:+.1} % (bar ≤ +10 %: {})",
            100.0 * sim::ORACLE_VALID_QUEUED_SHARE,
            100.0 * vs_oracle,
            verdict(vs_oracle <= 0.10),
        )
    } else {
        format!(
            "per-request oracle not valid here (reference-run-all made {queued:.1} % of requests wait, > {:.0} %): adaptive vs oracle {:+.1} %, no bar",
            100.0 * sim::ORACLE_VALID_QUEUED_SHARE,
            100.0 * vs_oracle,
        )
    };
    let vs_ref = adaptive.in_time_mean_ms / reference.in_time_mean_ms - 1.0;
    let paired = sim::paired_in_time(adaptive, reference);
    let best = statics.iter().max_by(|a, b| a.deadline_met_share().total_cmp(&b.deadline_met_share()));
    let (best_name, best_met) = best.map_or(("none", 0.0), |s| (s.policy.as_str(), s.deadline_met_share()));
    let met = adaptive.deadline_met_share();
    format!(
        "mixed (every static policy on the wrong path for ≥ {:.0} % of requests): {}\n\n\
         {oracle_line}\n\n\
         adaptive vs hindsight reference, mean over answers in time: {} (bar ≤ +10 %: {}); over the {} requests both answered in time: {:.1} vs {:.1} ms, {}\n\n\
         deadline met: adaptive {:.1} %, best static {:.1} % ({best_name}), reference {:.1} % (bar: adaptive ≥ every static, ties within 0.5 point: {})\n\n\
         adaptive: lost {}, duplicated {}, latest answer {:.0} ms past its deadline; {} probes, {:.0} B/s\n",
        100.0 * sim::MIXED_WRONG_SHARE,
        if sim::is_mixed(statics) { "yes" } else { "no" },
        ratio(adaptive.in_time_mean_ms, reference.in_time_mean_ms),
        verdict(vs_ref <= 0.10),
        paired.0,
        paired.1,
        paired.2,
        ratio(paired.1, paired.2),
        100.0 * met,
        100.0 * best_met,
        100.0 * reference.deadline_met_share(),
        verdict(met + 0.005 >= best_met),
        adaptive.lost(),
        adaptive.duplicate_answers,
        adaptive.max_late_ms,
        adaptive.probes,
        adaptive.probe_bytes_per_s(),
    )
}

/// The share of a row's offloads sent in each form (`None` if it sent none).
fn sent_as(s: &Stats, names: &[String]) -> Option<String> {
    let sent: usize = s.sent_by_form.iter().sum();
    let shares: Vec<String> = s
        .sent_by_form
        .iter()
        .zip(names)
        .filter(|(n, _)| **n > 0)
        .map(|(n, name)| format!("{name} {:.0} %", 100.0 * *n as f64 / sent.max(1) as f64))
        .collect();
    (!shares.is_empty()).then(|| format!("{} of {sent}", shares.join(", ")))
}

/// `--forms`: one table per trace.
fn forms_report(spec: &TraceSpec) -> Result<()> {
    let rows = sim::shaping::forms_table(spec)?;
    let names = sim::shaping::form_names(&spec.board);
    println!("### {} — {} s, {} requests\n", spec.name, spec.duration_s, rows[0].requests);
    println!("| policy | mean ms | p95 ms | deadline met | offloaded | sent as | lost | duplicated |");
    println!("|---|---|---|---|---|---|---|---|");
    for s in &rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} % | {:.0} % | {} | {} | {} |",
            s.policy,
            s.mean_ms,
            s.p95_ms,
            100.0 * s.deadline_met_share(),
            100.0 * s.offload_share,
            sent_as(s, &names).unwrap_or_else(|| "—".to_owned()),
            s.lost(),
            s.duplicate_answers,
        );
    }
    println!();
    Ok(())
}

/// `--sweep-uplink`: one table.
fn sweep_report(spec: &TraceSpec) -> Result<()> {
    let points = sim::shaping::uplink_sweep(spec, &SWEEP_MBPS, SWEEP_RTT_MS)?;
    let names = sim::shaping::form_names(&spec.board);
    let Some(first) = points.first() else { return Ok(()) };
    let options: Vec<&str> = first.costs.iter().map(|(n, _)| n.as_str()).collect();
    println!(
        "### Where each option wins: board `{}`, steady uplink, {SWEEP_RTT_MS} ms RTT, 100 Mbit/s down, {} fps, deadline {} ms\n",
        spec.board.board, spec.fps, spec.deadline_ms
    );
    println!("| uplink Mbit/s | {} | wins | adaptive: mean ms | adaptive+shaping: mean ms | deadline met | sent as |", options.join(" ms | ") + " ms");
    println!("|{}", "---|".repeat(options.len() + 6));
    for p in &points {
        let best = p.costs.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or("—", |(n, _)| n.as_str());
        let cells: Vec<String> = p.costs.iter().map(|(_, ms)| format!("{ms:.1}")).collect();
        println!(
            "| {} | {} | {best} | {:.1} | {:.1} | {:.1} % | {} |",
            p.up_mbps,
            cells.join(" | "),
            p.plain.mean_ms,
            p.adaptive.mean_ms,
            100.0 * p.adaptive.deadline_met_share(),
            sent_as(&p.adaptive, &names).unwrap_or_else(|| "local only".to_owned()),
        );
    }
    println!();
    Ok(())
}

fn main() -> Result<()> {
    let Args { board, board_slowdown, idle, report, paths } = args()?;
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
        if idle {
            spec.without_background_load();
        }
        match report {
            Report::Forms => {
                forms_report(&spec)?;
                continue;
            }
            Report::Sweep => return sweep_report(&spec),
            Report::Policies => {}
        }
        // Step 2: the oracle, every policy over the same requests and draws, the reference.
        let rows = sim::table(&spec)?;
        let timeline = spec.timeline();
        let reference = sim::reference(&spec, &timeline, Admission::Shed);
        let run_all = sim::reference(&spec, &timeline, Admission::RunAll);
        let oracle = &rows[0];
        // Step 3: the table, and the bars.
        let slower = if board_slowdown == 1.0 { String::new() } else { format!(", board {board_slowdown}× slower") };
        let load = if idle { ", no background load" } else { "" };
        println!("### {} — {} s, {} requests{slower}{load}\n", spec.name, spec.duration_s, oracle.requests);
        println!("{}\n", spec.description.trim());
        println!("{HEADER}");
        println!("|{}", "---|".repeat(HEADER.matches(" | ").count() + 1));
        println!("{}", row(oracle, oracle, &reference));
        println!("{}", row(&reference, oracle, &reference));
        println!("{}", row(&run_all, oracle, &reference));
        for s in &rows[1..] {
            println!("{}", row(s, oracle, &reference));
        }
        println!("\n{}", bars(&rows, &reference, &run_all));
    }
    Ok(())
}
