//! Issue 13's "Must show" bars in the simulator, under overload: the Pi-class board
//! (`tests/traces/boards/rpi4.toml`) with each trace's background load, on the seven shipped
//! traces and the three recorded ones; each bar also on the legacy board (with load) and on the
//! Pi-class board without load.
//!
//! Where a bar is missed today the miss is listed in [`KNOWN_MISSES`] with its figures, skipped
//! by the tests that run by default and asserted by `the_bars_adaptive_misses_today` (ignored):
//! `cargo test --release -p ferry-decide --test sim_overload -- --ignored` shows them.
//! BENCHMARKS.md ("Overload and the hindsight reference") has the tables and what is known of
//! why. Latencies here are simulated, not measured: no machine speed enters.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_decide::sim::reference::Admission;
use ferry_decide::sim::{self, BoardProfile, Stats, TraceSpec};

fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/traces")
}

/// A board and whether the trace's background load stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scenario {
    board: &'static str,
    load: bool,
}

/// The Pi-class board with each trace's background load: the overload of issue 13.
const OVERLOAD: Scenario = Scenario { board: "rpi4", load: true };
/// The board the simulator's earlier tables were made with, with load.
const LEGACY: Scenario = Scenario { board: "legacy-constants", load: true };
/// The Pi-class board on an idle device (`ferry-sim --load none`).
const PI_IDLE: Scenario = Scenario { board: "rpi4", load: false };

/// Which bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bar {
    /// Adaptive's deadline-met share ≥ every static policy's, ties within 0.5 point.
    DeadlineMet,
    /// Adaptive's mean over answers in time within 10 % of the hindsight reference's.
    Reference,
    /// Where the per-request oracle is valid: adaptive's mean within 10 % of the oracle's.
    Oracle,
}

/// The bars adaptive misses today: (scenario, trace, bar), with the figures of
/// `ferry-sim --board tests/traces/boards/FILE.toml [--load none] TRACE` on this branch.
const KNOWN_MISSES: &[(Scenario, &str, Bar)] = &[
    // +11.1 % (fallbacks from offloads tried in the bus's faster spells); deadline met
    // 96.2 % vs always-local's 99.2 %.
    (LEGACY, "hsdpa-bus", Bar::Oracle),
    (LEGACY, "hsdpa-bus", Bar::DeadlineMet),
];

fn known_miss(scenario: Scenario, trace: &str, bar: Bar) -> bool {
    KNOWN_MISSES.iter().any(|&(s, t, b)| (s, t, b) == (scenario, trace, bar))
}

/// One trace's table in a scenario.
struct Run {
    name: String,
    rows: Vec<Stats>,
    reference: Stats,
    run_all: Stats,
}

/// Every shipped and recorded trace in `scenario`.
fn runs(scenario: Scenario) -> Vec<Run> {
    let board = Arc::new(BoardProfile::load(&traces_dir().join(format!("boards/{}.toml", scenario.board))).unwrap());
    let mut paths = Vec::new();
    for dir in [traces_dir(), traces_dir().join("recorded")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    assert_eq!(paths.len(), 10, "{paths:?}");
    paths
        .iter()
        .map(|path| {
            let mut spec = TraceSpec::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            spec.board = board.clone();
            if !scenario.load {
                spec.without_background_load();
            }
            let timeline = spec.timeline();
            Run {
                name: spec.name.clone(),
                rows: sim::table(&spec).unwrap(),
                reference: sim::reference(&spec, &timeline, Admission::Shed),
                run_all: sim::reference(&spec, &timeline, Admission::RunAll),
            }
        })
        .collect()
}

/// Whether `bar` holds on `run`, and the figures that say so.
fn check(run: &Run, bar: Bar) -> Result<(), String> {
    let (oracle, adaptive) = (&run.rows[0], &run.rows[1]);
    assert_eq!((oracle.policy.as_str(), adaptive.policy.as_str()), ("oracle", "adaptive"));
    match bar {
        Bar::DeadlineMet => {
            for s in &run.rows[sim::STATIC_ROWS..] {
                if adaptive.deadline_met_share() + 0.005 < s.deadline_met_share() {
                    return Err(format!(
                        "deadline met: adaptive {:.1} % < {} {:.1} %",
                        100.0 * adaptive.deadline_met_share(),
                        s.policy,
                        100.0 * s.deadline_met_share()
                    ));
                }
            }
            Ok(())
        }
        Bar::Reference => {
            let (a, r) = (adaptive.in_time_mean_ms, run.reference.in_time_mean_ms);
            if a > 1.10 * r {
                return Err(format!("mean in time: adaptive {a:.1} ms vs reference {r:.1} ms ({:+.1} %)", 100.0 * (a / r - 1.0)));
            }
            Ok(())
        }
        Bar::Oracle => {
            let (a, o) = (adaptive.mean_ms, oracle.mean_ms);
            if sim::oracle_is_valid(&run.run_all) && a > 1.10 * o {
                return Err(format!("mean: adaptive {a:.1} ms vs oracle {o:.1} ms ({:+.1} %)", 100.0 * (a / o - 1.0)));
            }
            Ok(())
        }
    }
}

/// Asserts `bar` on every trace of `scenario` but the known misses (which are printed).
fn assert_bar(scenario: Scenario, bar: Bar) {
    let mut failures = Vec::new();
    for run in runs(scenario) {
        match (check(&run, bar), known_miss(scenario, &run.name, bar)) {
            (Err(e), false) => failures.push(format!("{}: {e}", run.name)),
            (Err(e), true) => eprintln!("{scenario:?} {}: known miss: {e}", run.name),
            (Ok(()), _) => {}
        }
    }
    assert!(failures.is_empty(), "{scenario:?} {bar:?}:\n{}", failures.join("\n"));
}

#[test]
fn under_overload_nothing_is_lost_or_duplicated() {
    for scenario in [OVERLOAD, PI_IDLE] {
        for run in runs(scenario) {
            for s in run.rows.iter().chain([&run.reference, &run.run_all]) {
                let at = format!("{scenario:?} {} {}", run.name, s.policy);
                assert_eq!((s.lost(), s.duplicate_answers), (0, 0), "{at}");
                assert!(s.requests > 1000, "{at}");
            }
        }
    }
}

#[test]
fn under_overload_the_reference_is_needed() {
    // Not vacuous: the Pi-class board with load makes the reference itself queue on several
    // traces, and there its queues cost it: the per-request oracle is no bound there.
    let runs = runs(OVERLOAD);
    let invalid: Vec<&Run> = runs.iter().filter(|r| !sim::oracle_is_valid(&r.run_all)).collect();
    assert!(invalid.len() >= 3, "{:?}", invalid.iter().map(|r| &r.name).collect::<Vec<_>>());
    for r in invalid {
        assert!(r.run_all.mean_ms > r.rows[0].mean_ms, "{}: {:?} vs {:?}", r.name, r.run_all, r.rows[0]);
    }
}

#[test]
fn adaptive_meets_at_least_every_static_policys_deadline_share() {
    for scenario in [OVERLOAD, LEGACY, PI_IDLE] {
        assert_bar(scenario, Bar::DeadlineMet);
    }
}

#[test]
fn adaptive_is_within_ten_percent_of_the_hindsight_reference_over_answers_in_time() {
    for scenario in [OVERLOAD, LEGACY, PI_IDLE] {
        assert_bar(scenario, Bar::Reference);
    }
}

#[test]
fn where_the_oracle_is_valid_adaptive_is_within_ten_percent_of_it() {
    for scenario in [OVERLOAD, LEGACY, PI_IDLE] {
        assert_bar(scenario, Bar::Oracle);
    }
    // Not vacuous: the oracle is valid on most traces of the legacy board and the idle Pi.
    for scenario in [LEGACY, PI_IDLE] {
        let valid = runs(scenario).iter().filter(|r| sim::oracle_is_valid(&r.run_all)).count();
        assert!(valid >= 5, "{scenario:?}: valid on {valid} traces");
    }
}

#[test]
#[ignore = "adaptive misses these today: KNOWN_MISSES lists them with their figures (policy, see BENCHMARKS.md)"]
fn the_bars_adaptive_misses_today() {
    let mut failures = Vec::new();
    for scenario in [OVERLOAD, LEGACY, PI_IDLE] {
        let runs = runs(scenario);
        for &(s, trace, bar) in KNOWN_MISSES.iter().filter(|m| m.0 == scenario) {
            let run = runs.iter().find(|r| r.name == trace).unwrap_or_else(|| panic!("no trace {trace}"));
            if let Err(e) = check(run, bar) {
                failures.push(format!("{s:?} {trace} {bar:?}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The grace past the deadline an answer may take: `[decide] deadline_grace_ms` of the
/// simulator's config, or issue 13's 20 ms if the key is not there.
fn grace_ms() -> f64 {
    let config: toml::Table = sim::SIM_CONFIG.parse().unwrap();
    config
        .get("decide")
        .and_then(|d| d.get("deadline_grace_ms"))
        .and_then(|g| g.as_integer().map(|i| i as f64).or_else(|| g.as_float()))
        .unwrap_or(20.0)
}

#[test]
fn under_overload_no_answer_comes_later_than_its_deadline_plus_grace() {
    let grace = grace_ms();
    let mut failures = Vec::new();
    for scenario in [OVERLOAD, PI_IDLE, LEGACY] {
        for run in runs(scenario) {
            // Every policy: the deadline is the request machine's, not the policy's.
            for s in &run.rows[1..] {
                if s.max_late_ms > grace {
                    failures.push(format!("{scenario:?} {} {}: {:.0} ms past the deadline", run.name, s.policy, s.max_late_ms));
                }
            }
        }
    }
    assert!(failures.is_empty(), "grace {grace} ms:\n{}", failures.join("\n"));
}
