//! The simulator over the shipped traces: every trace parses, a run is deterministic, nothing
//! is lost, and `adaptive` stays within 10 % of the oracle's mean latency (issue 5's bar).
//! No timing assertions: latencies here are simulated, not measured.

use std::path::PathBuf;

use ferry_offload::decide::sim::{self, Stats, TraceSpec};

fn traces() -> Vec<(PathBuf, TraceSpec)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/traces");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let spec = TraceSpec::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path, spec));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn key(rows: &[Stats]) -> Vec<String> {
    rows.iter().map(|s| format!("{s:?}")).collect()
}

#[test]
fn every_shipped_trace_parses_and_has_a_distinct_name() {
    let all = traces();
    assert!(all.len() >= 7, "{} traces", all.len());
    let mut names: Vec<&str> = all.iter().map(|(_, s)| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
    for (path, spec) in &all {
        assert_eq!(Some(spec.name.as_str()), path.file_stem().and_then(|s| s.to_str()), "{}", path.display());
        assert!(!spec.description.trim().is_empty(), "{}", path.display());
    }
}

#[test]
fn the_same_seed_gives_the_same_table() {
    for (path, spec) in traces() {
        let a = sim::table(&spec).unwrap();
        let b = sim::table(&spec).unwrap();
        assert_eq!(key(&a), key(&b), "{}", path.display());
    }
}

#[test]
fn another_seed_gives_another_world() {
    let (_, spec) = traces().into_iter().next().unwrap();
    let mut other = spec.clone();
    other.seed ^= 1;
    assert_ne!(spec.timeline().samples, other.timeline().samples);
}

#[test]
fn every_request_gets_exactly_one_answer_on_every_trace() {
    for (path, spec) in traces() {
        for s in sim::table(&spec).unwrap() {
            assert_eq!(s.answers, s.requests, "{} {}", path.display(), s.policy);
            assert_eq!(s.duplicate_answers, 0, "{} {}", path.display(), s.policy);
        }
    }
}

#[test]
fn adaptive_is_within_ten_percent_of_the_oracle_on_every_trace() {
    for (path, spec) in traces() {
        let rows = sim::table(&spec).unwrap();
        let (oracle, adaptive) = (&rows[0], &rows[1]);
        assert_eq!((oracle.policy.as_str(), adaptive.policy.as_str()), ("oracle", "adaptive"));
        assert!(
            adaptive.mean_ms <= 1.10 * oracle.mean_ms,
            "{}: adaptive {:.1} ms vs oracle {:.1} ms",
            path.display(),
            adaptive.mean_ms,
            oracle.mean_ms
        );
    }
}

#[test]
fn a_slower_board_stretches_local_compute_and_nothing_else() {
    let (_, mut spec) = traces().into_iter().find(|(_, s)| s.name == "steady-wifi").unwrap();
    let timeline = spec.timeline();
    let vm = sim::world::requests(&spec);
    spec.board_slowdown = 4.0;
    let pi = sim::world::requests(&spec);
    let (a, b) = (&vm[0], &pi[0]);
    let s = timeline.at(a.at_us);
    let ratio = sim::world::local_us(b, true, &s) / sim::world::local_us(a, true, &s);
    assert!((ratio - 4.0).abs() < 1e-9, "{ratio}");
    assert_eq!(sim::world::edge_outcome(a, &s), sim::world::edge_outcome(b, &s));
}
