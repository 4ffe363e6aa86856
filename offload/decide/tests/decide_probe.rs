//! The probe plan through the decider: how often an unused edge is probed follows what its
//! recovery would gain the request stream, within a share of the uplink; and a throttle and
//! its end are seen in one probe each.

#[path = "decide_common.rs"]
mod common;

use common::*;
use ferry_decide::{Choice, FormId, ModelId, Observation};

/// A board whose local run takes 400 ms, offloading over a 100 Mbit/s uplink.
fn offloading() -> (ferry_decide::Decider, u64) {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 400.0, 10, &mut now);
    for _ in 0..20 {
        offload(&mut d, 100.0, 2.0, &mut now);
        assert_eq!(d.decide(&image(None), now).choice, Choice::Offload(EDGE));
        now += 100_000;
    }
    (d, now)
}

/// A probe of `bytes` answered over an uplink of `mbps`, 2 ms RTT.
fn probe(d: &mut ferry_decide::Decider, bytes: u32, mbps: f64, now: &mut u64) {
    d.observe(Observation::ProbeSent(EDGE), *now);
    let transfer = 2_000.0 + f64::from(bytes) * 8.0 / mbps;
    *now += 2_000 + transfer as u64;
    let answered = Observation::ProbeAnswered { target: EDGE, rtt_us: 2_000, up_bytes: bytes, down_bytes: 64, transfer_us: transfer as u32, edge_queue_us: Some(0) };
    d.observe(answered, *now);
}

/// The uplink collapses to `mbps`: the next offload is overtaken by the local run after
/// 500 ms; requests keep coming (and run local) until it is answered, late.
fn collapse(d: &mut ferry_decide::Decider, mbps: f64, now: &mut u64) {
    let sent = *now;
    d.observe(Observation::OffloadSent { target: EDGE, up_bytes: 150_000 }, *now);
    *now += 500_000;
    d.observe(Observation::OffloadAbandoned { target: EDGE, model: ModelId(0), up_bytes: 150_000, down_bytes: 1_000, waited_us: 500_000 }, *now);
    let total = 2_000.0 + 150_000.0 * 8.0 / mbps + 15_000.0;
    while *now + 500_000 < sent + total as u64 {
        assert_eq!(d.decide(&image(None), *now).choice, Choice::Local(LOCAL), "{} ms after the collapse", (*now - sent) / 1000);
        local_runs(d, 400.0, 1, now);
        *now += 100_000;
    }
    *now = sent + total as u64;
    d.observe(Observation::OffloadLate { target: EDGE, model: ModelId(0), form: FormId::ORIGINAL, up_bytes: 150_000, down_bytes: 1_000, total_us: total as u32, edge_queue_us: 0, edge_compute_us: 15_000 }, *now);
}

#[test]
fn an_agent_that_never_had_a_request_probes_once_per_idle_interval() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 400.0, 10, &mut now);
    // Never measured: probed after probe_after_ms (1 s).
    assert_eq!(d.probe_plan(EDGE, now).interval_us, 1_000_000);
    probe(&mut d, 16_384, 100.0, &mut now);
    let plan = d.probe_plan(EDGE, now);
    assert_eq!(plan.interval_us, 600_000_000);
    assert!(plan.bytes_per_s * 86_400.0 < 10e6, "{plan:?}");
    assert_eq!(d.probe_due(now + 599_000_000), None);
    assert_eq!(d.probe_due(now + 600_000_000), Some(EDGE));
}

#[test]
fn a_collapse_while_requests_flow_is_probed_every_second_within_the_share_of_a_slow_uplink() {
    let (mut d, mut now) = offloading();
    collapse(&mut d, 0.2, &mut now);
    // Local now; every request would gain ~370 ms on a recovered edge, 2 a second: probe as
    // often as the uplink's share allows — 16 KiB take ~650 ms at 0.2 Mbit/s, 40 % of it is
    // one probe every ~1.6 s.
    for _ in 0..4 {
        assert_eq!(d.decide(&image(None), now).choice, Choice::Local(LOCAL));
        local_runs(&mut d, 400.0, 1, &mut now);
        now += 100_000;
    }
    let slow = d.probe_plan(EDGE, now);
    assert!(slow.gain > 0.5, "{slow:?}");
    assert!((slow.uplink_share - 0.4).abs() < 0.01, "{slow:?}");
    assert!(slow.interval_us > 1_300_000 && slow.interval_us < 2_000_000, "{slow:?}");
    // The link is back: one probe restarts the estimate, and the next request offloads.
    probe(&mut d, slow.bytes, 100.0, &mut now);
    assert_eq!(d.decide(&image(None), now).choice, Choice::Offload(EDGE));
    // On a fast link that is unused, probes go every probe_after_ms at a share of ~0 ...
    let fast = d.probe_plan(EDGE, now);
    assert_eq!(fast.interval_us, 1_000_000);
    assert!(fast.uplink_share < 0.01, "{fast:?}");
    // ... and once requests stop, ever more rarely, down to the idle cadence.
    assert!(d.probe_plan(EDGE, now + 60_000_000).interval_us > 10_000_000);
    assert_eq!(d.probe_plan(EDGE, now + 3_600_000_000).interval_us, 600_000_000);
}

#[test]
fn an_unused_edge_that_would_not_win_even_recovered_is_probed_rarely() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    // A fast board: 5 ms local runs; the edge's best is 2 ms + 12 ms + 15 ms.
    local_runs(&mut d, 5.0, 20, &mut now);
    probe(&mut d, 16_384, 100.0, &mut now);
    for _ in 0..20 {
        assert_eq!(d.decide(&image(None), now).choice, Choice::Local(LOCAL));
        local_runs(&mut d, 5.0, 1, &mut now);
        now += 100_000;
    }
    assert_eq!(d.probe_plan(EDGE, now).interval_us, 600_000_000);
}
