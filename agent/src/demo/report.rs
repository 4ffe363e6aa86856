//! What the demo prints: a line per (round, policy, phase) as it goes, then the summary. The
//! summary says what was emulated (board slowdown, link shaping, background job), how the
//! policies took turns, and the ratios against the better static policy and both references.

use std::fmt::Write as _;

use super::record::{mean, on_edge_from, Figures, RequestRecord};
use super::scenario::{is_static, Phase, ADAPTIVE, PHASES, POLICIES};
use super::DemoReport;

/// One (round, policy, phase) line: the marks (L/E/x per request) and the phase mean.
pub fn phase_line(
    round: u32,
    rounds: u32,
    policy: &str,
    phase: &Phase,
    records: &[RequestRecord],
    per_phase: u32,
) -> String {
    let marks: String = records.iter().map(|r| r.path.mark()).collect();
    let lat: Vec<f64> = records.iter().map(|r| r.latency_ms).collect();
    format!(
        "  round {}/{rounds}  {policy:<15} {:<22} {:>5.1} Mbit/s {:>3} ms  [{marks:<w$}]  mean {:>6.1} ms",
        round + 1,
        phase.name,
        phase.mbps,
        phase.delay_ms,
        mean(&lat),
        w = per_phase as usize
    )
}

/// The summary, as printed at the end.
pub fn summary(r: &DemoReport) -> String {
    let o = &r.options;
    let c = &r.comparison;
    let mut s = String::new();
    let per_policy = o.rounds * o.per_phase * PHASES.len() as u32;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "summary: {} rounds × {} phases × {} requests = {per_policy} requests per policy",
        o.rounds,
        PHASES.len(),
        o.per_phase
    );
    let _ = writeln!(
        s,
        "  emulated board: local compute takes {:.1}× its measured time on this machine (the extra {:.1}× as a wait that holds the local runner); the edge computes at this machine's speed",
        o.slowdown,
        o.slowdown - 1.0
    );
    let _ = writeln!(s, "  emulated link: a pacing proxy on loopback (bandwidth each way + one-way delay), set per phase:");
    for p in PHASES {
        let _ = writeln!(
            s,
            "    {:<22} {:>5.1} Mbit/s, {:>3} ms one-way, background CPU job {}",
            p.name,
            p.mbps,
            p.delay_ms,
            if p.cpu_load {
                "on (one spinning thread)"
            } else {
                "off"
            }
        );
    }
    let pacing = if o.interval_ms == 0 {
        "back to back".to_string()
    } else {
        format!(
            "one every {} ms (or right after the previous answer, when it is later)",
            o.interval_ms
        )
    };
    let _ = writeln!(s, "  requests: one at a time, {pacing}; EfficientNet-Lite0, the cat and espresso JPEGs in turn; deadline {} ms", o.deadline_ms);
    let orders: Vec<String> = (0..o.rounds.min(POLICIES.len() as u32))
        .map(|round| super::scenario::order(round).join(" → "))
        .collect();
    let _ = writeln!(
        s,
        "  turns: in every round each policy runs the whole phase sequence with a fresh agent, one policy after another; the order rotates by one each round ({}{})",
        orders.join("; "),
        if o.rounds > POLICIES.len() as u32 { "; and so on" } else { "" }
    );
    let _ = writeln!(
        s,
        "  machine: {} cores, load average {} at the start, {} at the end; took {:.1} s",
        r.cores,
        r.load_before.as_deref().unwrap_or("unknown"),
        r.load_after.as_deref().unwrap_or("unknown"),
        r.took_s
    );

    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "per phase, mean ms over {} rounds × {} requests:",
        o.rounds, o.per_phase
    );
    let _ = write!(s, "  {:<22}", "phase");
    for p in POLICIES {
        let _ = write!(s, " {p:>15}");
    }
    let _ = writeln!(s, " {:>18} {:>14}", "best static/phase", "per-slot best");
    let best = super::record::per_slot_best(&r.records);
    let per_phase_static = super::record::best_static_per_phase(&r.records);
    for (i, p) in PHASES.iter().enumerate() {
        let _ = write!(s, "  {:<22}", p.name);
        for policy in POLICIES {
            let f = Figures::of(
                r.records
                    .iter()
                    .filter(|x| x.phase == i && x.policy == policy),
            );
            let _ = write!(s, " {:>15.1}", f.mean_ms);
        }
        let st: Vec<f64> = per_phase_static
            .iter()
            .filter(|((_, ph), _)| *ph == i)
            .map(|(_, v)| *v)
            .collect();
        let sb: Vec<f64> = best
            .iter()
            .filter(|b| b.phase == i)
            .map(|b| b.best_ms)
            .collect();
        let _ = writeln!(s, " {:>18.1} {:>14.1}", mean(&st), mean(&sb));
    }

    let _ = writeln!(s);
    let _ = writeln!(s, "every request (L = ran locally, E = ran on the edge):");
    let _ = writeln!(
        s,
        "  {:<15} {:>9} {:>9} {:>6} {:>6} {:>7} {:>10} {:>7}",
        "policy", "mean ms", "p95 ms", "local", "edge", "failed", "fallbacks", "misses"
    );
    for (p, f) in &c.policies {
        let _ = writeln!(
            s,
            "  {p:<15} {:>9.1} {:>9.1} {:>6} {:>6} {:>7} {:>10} {:>7}",
            f.mean_ms, f.p95_ms, f.local, f.edge, f.failed, f.fallbacks, f.misses
        );
    }
    let _ = writeln!(
        s,
        "  {:<15} {:>9.1}   (reference, see below)",
        "best static/ph.", c.best_static_per_phase_ms
    );
    let _ = writeln!(
        s,
        "  {:<15} {:>9.1}   (reference, see below)",
        "per-slot best", c.per_slot_best_ms
    );

    let _ = writeln!(s);
    let rounds: Vec<String> = c
        .per_round_vs_better_static
        .iter()
        .map(|x| format!("{x:.2}"))
        .collect();
    let _ = writeln!(
        s,
        "  {ADAPTIVE} / better static ({}) = {:.2}   (per round, against that round's better static: {})",
        c.better_static,
        c.adaptive_ms / c.better_static_ms,
        rounds.join(" ")
    );
    let _ = writeln!(
        s,
        "  {ADAPTIVE} / best static per phase   = {:.2}",
        c.adaptive_ms / c.best_static_per_phase_ms
    );
    let _ = writeln!(
        s,
        "  {ADAPTIVE} / per-slot best           = {:.2}",
        c.adaptive_ms / c.per_slot_best_ms
    );
    s.push_str(&recovery(r));
    let statics: Vec<&str> = POLICIES.iter().copied().filter(|p| is_static(p)).collect();
    let _ = writeln!(
        s,
        "  references, both in hindsight: \"best static per phase\" = in each round and phase, the lower of {}'s phase means (a rule told the phases in advance);",
        statics.join("'s and ")
    );
    let _ = writeln!(
        s,
        "  \"per-slot best\" = for each request slot (round, phase, request number), the lowest latency any of the {} policies measured in it, failures excluded{}: the minimum of noisy measurements, below what any one policy can reach",
        POLICIES.len(),
        if c.slots_without_result > 0 { format!(" ({} slots had no result and are left out)", c.slots_without_result) } else { String::new() }
    );
    s
}

/// After each phase whose link is better than the one before (the end of a collapse): when
/// adaptive went back to the edge for the rest of the phase, per round.
fn recovery(r: &DemoReport) -> String {
    let mut s = String::new();
    for (i, p) in PHASES.iter().enumerate().skip(1) {
        if p.mbps <= PHASES[i - 1].mbps {
            continue;
        }
        let per_round: Vec<String> = (0..r.options.rounds)
            .map(|round| {
                let recs: Vec<&RequestRecord> = r
                    .records
                    .iter()
                    .filter(|x| x.round == round && x.phase == i && x.policy == ADAPTIVE)
                    .collect();
                match on_edge_from(&recs) {
                    Some(ms) => format!("{:.1} s", ms / 1e3),
                    None => "not within the phase".to_string(),
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "  {ADAPTIVE} back on the edge for the rest of \"{}\" (after \"{}\") from: {} (per round)",
            p.name,
            PHASES[i - 1].name,
            per_round.join(", ")
        );
    }
    s
}
