//! Admission in the decider: what a request's constraints and a full local queue leave it.

#[path = "decide_common.rs"]
mod common;

use common::*;
use ferry_decide::{Choice, Config, Constraints, Decider, Mode, Observation, Placement, Why};

fn constrained(placement: Placement) -> Constraints {
    Constraints { placement, ..Constraints::default() }
}

/// A decider whose edge (100 Mbit/s) is much faster than local (200 ms).
fn edge_faster() -> (Decider, u64) {
    let mut d = decider(true);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 200.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    assert_eq!(d.decide(&image(None), now).choice, Choice::Offload(EDGE));
    (d, now)
}

#[test]
fn local_only_never_offers_the_edge_nor_an_edge_fallback_or_hedge() {
    let (mut d, now) = edge_faster();
    // A deadline local is at risk of missing: without the constraint it would hedge.
    let dec = d.decide_with(&image(Some(400)), &constrained(Placement::LocalOnly), now);
    assert_eq!(dec.choice, Choice::Local(LOCAL), "{dec:?}");
    assert!(dec.reason.best_edge.is_none(), "the edge is not even a candidate: {dec:?}");
}

#[test]
fn edge_only_has_no_local_fallback() {
    let (mut d, now) = edge_faster();
    let dec = d.decide_with(&image(Some(400)), &constrained(Placement::EdgeOnly), now);
    assert_eq!((dec.choice, dec.fallback), (Choice::Offload(EDGE), None), "{dec:?}");
    // With the edge down, an edge-only request has nowhere to go.
    for _ in 0..5 {
        d.observe(Observation::OffloadSent { target: EDGE, up_bytes: 150_000 }, now);
        d.observe(Observation::OffloadFailed(EDGE), now);
    }
    let dec = d.decide_with(&image(None), &constrained(Placement::EdgeOnly), now);
    assert_eq!((dec.choice, dec.reason.why), (Choice::Nowhere, Why::NotAllowed), "{dec:?}");
}

#[test]
fn a_full_local_queue_sends_the_request_to_the_edge_or_answers_busy() {
    let text = CONFIG.replace("HEDGE", "false").replace("[decide]", "[decide]\nlocal_queue_max = 2");
    let mut d = Decider::new(&Config::from_toml(&text).unwrap()).unwrap();
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 20.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 5.0, 5.0, &mut now);
    }
    // Local (20 ms) beats the 5 Mbit/s edge (≈ 260 ms) while the queue has room.
    assert_eq!(d.decide(&image(None), now).choice, Choice::Local(LOCAL));
    d.observe(Observation::LocalQueued(LOCAL), now);
    d.observe(Observation::LocalStarted(LOCAL), now);
    d.observe(Observation::LocalQueued(LOCAL), now);
    assert_eq!(d.decide(&image(None), now).choice, Choice::Local(LOCAL), "one waits, one more may");
    d.observe(Observation::LocalQueued(LOCAL), now);
    // Two wait behind the running one: full. The edge takes it, slower as it is...
    let dec = d.decide(&image(None), now);
    assert_eq!((dec.choice, dec.fallback), (Choice::Offload(EDGE), None), "{dec:?}");
    // ...and a request that may not leave the board is answered busy at once.
    let dec = d.decide_with(&image(None), &constrained(Placement::LocalOnly), now);
    assert_eq!((dec.choice, dec.reason.why), (Choice::Nowhere, Why::LocalQueueFull), "{dec:?}");
}

#[test]
fn a_request_can_ask_for_the_energy_mode_over_the_configured_latency_mode() {
    let text = CONFIG.replace("HEDGE", "false")
        + "\n[energy]\nradio_nj_per_byte = 1000.0\nradio_tail_mj = 200.0\n\n[[energy.inference]]\nmodel = \"efficientnet-lite0\"\nprecision = \"fp32\"\nmj_per_inference = 20.0\n";
    let mut d = Decider::new(&Config::from_toml(&text).unwrap()).unwrap();
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 200.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    // Latency: the edge. Energy: the radio costs 150 KB × 1 µJ + 200 mJ, local 20 mJ.
    assert_eq!(d.decide(&image(None), now).choice, Choice::Offload(EDGE));
    let energy = Constraints { mode: Some(Mode::Energy), ..Constraints::default() };
    assert_eq!(d.decide_with(&image(None), &energy, now).choice, Choice::Local(LOCAL));
}
