//! `ferry demo` runs end to end on this machine with nothing but the repository: in-process
//! broker and edge, emulated link, three policies taking turns round by round, a summary. This
//! checks the demo's structure from its JSON record; its latency figures and ratios are a
//! benchmark, recorded in BENCHMARKS.md, never asserted here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

const POLICIES: [&str; 3] = ["adaptive", "always-local", "always-offload"];
const ROUNDS: u64 = 2;
const PER_PHASE: u64 = 2;

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn every_policy_runs_every_phase_in_every_round_and_the_reference_is_the_best_measured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let record = dir.path().join("demo.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "demo",
            "--per-phase",
            &PER_PHASE.to_string(),
            "--rounds",
            &ROUNDS.to_string(),
            "--interval-ms",
            "0",
            "--slowdown",
            "3",
        ])
        .arg("--record")
        .arg(&record)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_remove("FERRY_MODELS")
        .output()
        .expect("run ferry demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&record).expect("the record"))
        .expect("the record is JSON");
    let phases = json["phases"].as_array().expect("phases").len() as u64;
    assert!(
        phases >= 5,
        "the scenario has its phases, recovery included: {}",
        json["phases"]
    );
    let records = json["records"].as_array().expect("records");

    // Every request answered exactly once: one record per (round, policy, phase, slot), as
    // many as were sent, each with a request id of its own within its agent.
    assert_eq!(
        records.len() as u64,
        ROUNDS * POLICIES.len() as u64 * phases * PER_PHASE
    );
    let mut seen = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for r in records {
        let key = (
            num(r, "round"),
            text(r, "policy").to_string(),
            num(r, "phase"),
            num(r, "slot"),
        );
        assert!(seen.insert(key.clone()), "answered twice: {key:?}");
        assert!(
            ids.insert((
                num(r, "round"),
                text(r, "policy").to_string(),
                num(r, "request_id")
            )),
            "request id twice: {r}"
        );
        assert!(POLICIES.contains(&text(r, "policy")), "{r}");
        assert!(r["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{r}");
        assert_ne!(text(r, "path"), "failed", "a failed request: {r}");
        if text(r, "policy") == "always-local" {
            assert_eq!(text(r, "path"), "local", "always-local ran elsewhere: {r}");
        }
    }
    // Every policy ran every phase in every round, phases in order, one policy after another,
    // and the order rotated between rounds.
    let mut turns: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in records {
        let round = turns.entry(num(r, "round")).or_default();
        if round.last().map(String::as_str) != Some(text(r, "policy")) {
            round.push(text(r, "policy").to_string());
        }
    }
    assert_eq!(turns.len() as u64, ROUNDS);
    for (round, order) in &turns {
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            sorted, POLICIES,
            "round {round}: each policy takes one turn: {order:?}"
        );
        for policy in POLICIES {
            let phases_run: Vec<(u64, u64)> = records
                .iter()
                .filter(|r| num(r, "round") == *round && text(r, "policy") == policy)
                .map(|r| (num(r, "phase"), num(r, "slot")))
                .collect();
            let expected: Vec<(u64, u64)> = (0..phases)
                .flat_map(|p| (0..PER_PHASE).map(move |s| (p, s)))
                .collect();
            assert_eq!(phases_run, expected, "round {round}, {policy}");
        }
    }
    assert_ne!(
        turns[&0][0], turns[&1][0],
        "the order rotates between rounds: {turns:?}"
    );

    // The per-slot reference: one per slot, the lowest latency a policy measured in it, so at
    // most every policy's figure in that slot.
    let best = json["per_slot_best"].as_array().expect("per_slot_best");
    assert_eq!(best.len() as u64, ROUNDS * phases * PER_PHASE);
    for b in best {
        let in_slot: Vec<&Value> = records
            .iter()
            .filter(|r| {
                num(r, "round") == num(b, "round")
                    && num(r, "phase") == num(b, "phase")
                    && num(r, "slot") == num(b, "slot")
            })
            .collect();
        assert_eq!(in_slot.len(), POLICIES.len(), "{b}");
        let best_ms = b["best_ms"].as_f64().expect("best_ms");
        for r in &in_slot {
            assert!(
                best_ms <= r["latency_ms"].as_f64().expect("latency"),
                "reference {b} above {r}"
            );
        }
        assert!(
            in_slot
                .iter()
                .any(|r| r["latency_ms"].as_f64() == Some(best_ms)
                    && text(r, "policy") == text(b, "policy")),
            "{b} was measured"
        );
    }

    // The summary says what was emulated and states both comparisons (their values are not
    // asserted: they are a measurement).
    assert!(
        stdout.contains("local compute takes 3.0× its measured time"),
        "the board slowdown: {stdout}"
    );
    assert!(
        stdout.contains("1.5 Mbit/s,  40 ms one-way"),
        "the link shaping: {stdout}"
    );
    assert!(stdout.contains(&format!("{ROUNDS} rounds")), "{stdout}");
    for line in [
        "adaptive / better static",
        "adaptive / best static per phase",
        "adaptive / per-slot best",
        "load average",
        "back on the edge for the rest of \"good Wi-Fi again\"",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
}
