//! The adaptive policy's choices on constructed situations, and hysteresis.

#[path = "decide_common.rs"]
mod common;

use common::*;
use ferry_decide::{Choice, FormId, ModelId, Observation, Why};

#[test]
fn fast_link_and_loaded_cpu_offloads() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    // Under 80 % background load the same model takes 88 ms (k = 1.5).
    system(&mut d, 0.8, now);
    local_runs(&mut d, 88.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    let dec = d.decide(&image(Some(150)), now);
    assert_eq!(dec.choice, Choice::Offload(EDGE), "{dec:?}");
    let r = dec.reason;
    assert!(r.best_local.unwrap().mean_ms > 70.0 && r.best_edge.unwrap().mean_ms < 40.0, "{r:?}");
}

#[test]
fn collapsed_link_runs_locally() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    for _ in 0..10 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    assert_eq!(d.decide(&image(None), now).choice, Choice::Offload(EDGE));
    // One answer over a collapsed link (0.5 Mbit/s) is enough to move.
    offload(&mut d, 0.5, 200.0, &mut now);
    let dec = d.decide(&image(None), now);
    assert_eq!(dec.choice, Choice::Local(LOCAL), "{dec:?}");
    assert!(dec.reason.best_edge.unwrap().mean_ms > 100.0);
}

fn uncertain_link(hedge: bool) -> ferry_decide::Decision {
    let mut d = decider(hedge);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    // The link alternates between 200 and 12 Mbit/s: a mean near local, a wide spread.
    for i in 0..40 {
        offload(&mut d, if i % 2 == 0 { 200.0 } else { 12.0 }, 5.0, &mut now);
    }
    d.decide(&image(Some(60)), now)
}

#[test]
fn tight_deadline_and_uncertain_link_runs_locally() {
    let dec = uncertain_link(false);
    assert_eq!(dec.choice, Choice::Local(LOCAL), "{dec:?}");
    let edge = dec.reason.best_edge.unwrap();
    assert!(edge.quantile_ms > 60.0, "{edge:?}");
}

#[test]
fn tight_deadline_and_uncertain_link_runs_locally_or_hedges_with_hedging_on() {
    let dec = uncertain_link(true);
    assert!(
        matches!(dec.choice, Choice::Local(LOCAL) | Choice::Hedge { edge: EDGE, local: LOCAL }),
        "{dec:?}"
    );
}

#[test]
fn near_equal_paths_do_not_flap() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 60.0, 4.0, &mut now); // ≈ 39 ms: a hair faster than local
    }
    let first = d.decide(&image(None), now).choice;
    let mut switches = 0;
    let mut last = first;
    for i in 0..200 {
        // Alternate the two paths' measurements around equality.
        if i % 2 == 0 {
            local_runs(&mut d, 38.0 + f64::from(i % 5), 1, &mut now);
        } else {
            offload(&mut d, 55.0 + f64::from(i % 7), 4.0, &mut now);
        }
        let c = d.decide(&image(None), now).choice;
        switches += usize::from(c != last);
        last = c;
    }
    assert!(switches <= 2, "{switches} switches");
}

#[test]
fn a_clearly_better_path_overrides_hysteresis() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 20.0, 10.0, &mut now);
    }
    assert_eq!(d.decide(&image(None), now).choice, Choice::Local(LOCAL));
    for _ in 0..20 {
        offload(&mut d, 200.0, 3.0, &mut now);
    }
    let dec = d.decide(&image(None), now);
    assert_eq!(dec.choice, Choice::Offload(EDGE));
    assert_ne!(dec.reason.why, Why::Hysteresis);
}

#[test]
fn a_hot_board_shifts_work_to_the_edge_and_back_when_cool() {
    use ferry_decide::{Observation, SystemState};
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 40.0, 5.0, &mut now); // ≈ 50 ms: local wins while cool
    }
    assert_eq!(d.decide(&image(None), now).choice, Choice::Local(LOCAL));
    for _ in 0..30 {
        now += 1_000_000;
        d.observe(Observation::System(SystemState { cpu_load: 0.0, freq_ratio: 1.0, temp_c: 83.0 }), now);
    }
    let hot = d.decide(&image(None), now);
    assert_eq!(hot.choice, Choice::Offload(EDGE), "{hot:?}");
    assert!(hot.reason.thermal > 0.5);
    for _ in 0..60 {
        now += 1_000_000;
        d.observe(Observation::System(SystemState { cpu_load: 0.0, freq_ratio: 1.0, temp_c: 60.0 }), now);
    }
    assert_eq!(d.decide(&image(None), now).choice, Choice::Local(LOCAL));
}

#[test]
fn a_tripped_edge_is_not_a_candidate_until_a_probe_succeeds() {
    use ferry_decide::Observation;
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.9, now);
    for _ in 0..10 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    for _ in 0..3 {
        d.observe(Observation::OffloadSent { target: EDGE, up_bytes: 150_000 }, now);
        now += 1_000_000;
        d.observe(Observation::OffloadFailed(EDGE), now);
    }
    let dec = d.decide(&image(None), now);
    assert_eq!(dec.choice, Choice::Local(LOCAL));
    assert!(dec.reason.best_edge.is_none());
    now += 600_000;
    assert_eq!(d.probe_due(now), Some(EDGE));
    d.observe(Observation::ProbeSent(EDGE), now);
    d.observe(Observation::ProbeAnswered { target: EDGE, rtt_us: 5_000, up_bytes: 16_384, down_bytes: 64, transfer_us: 7_000, edge_queue_us: Some(0) }, now + 12_000);
    assert_eq!(d.decide(&image(None), now + 12_000).choice, Choice::Offload(EDGE));
}

#[test]
fn static_policies_do_what_they_say() {
    use ferry_decide::{policy_of, Config, Decider, PolicyKind};
    let cfg = Config::from_toml(&CONFIG.replace("HEDGE", "false")).unwrap();
    let mut l = Decider::with_policy(&cfg, policy_of(PolicyKind::AlwaysLocal)).unwrap();
    let mut o = Decider::with_policy(&cfg, policy_of(PolicyKind::AlwaysOffload)).unwrap();
    let mut t = Decider::with_policy(&cfg, policy_of(PolicyKind::Threshold)).unwrap();
    assert_eq!(l.decide(&image(None), 0).choice, Choice::Local(LOCAL));
    assert_eq!(o.decide(&image(None), 0).choice, Choice::Offload(EDGE));
    // Prior bandwidth guess is 10 Mbit/s > 5: the seed rule offloads.
    assert_eq!(t.decide(&image(None), 0).choice, Choice::Offload(EDGE));
    let mut now = 0;
    offload(&mut t, 1.0, 50.0, &mut now);
    for _ in 0..20 {
        offload(&mut t, 1.0, 50.0, &mut now);
    }
    assert_eq!(t.decide(&image(None), now).choice, Choice::Local(LOCAL));
}

#[test]
fn threshold_reads_the_cpu_demand_and_the_bandwidth_estimate() {
    use ferry_decide::{policy_of, Config, Decider, PolicyKind};
    let cfg = Config::from_toml(&CONFIG.replace("HEDGE", "false")).unwrap();
    let mut t = Decider::with_policy(&cfg, policy_of(PolicyKind::Threshold)).unwrap();
    let mut now = 0;
    system(&mut t, 0.0, now);
    local_runs(&mut t, 40.0, 20, &mut now);
    // A 2 Mbit/s link: below the 5 Mbit/s threshold.
    for _ in 0..20 {
        offload(&mut t, 2.0, 50.0, &mut now);
    }
    // 5 requests/s on an idle board: demand ≈ 40 ms / 200 ms = 0.2 < 0.8 ⇒ local.
    for _ in 0..20 {
        now += 200_000;
        let dec = t.decide(&image(None), now);
        assert_eq!(dec.choice, Choice::Local(LOCAL), "{dec:?}");
        assert_eq!(dec.reason.why, Why::BelowThresholds);
    }
    // Another job takes 70 % of the CPU: 0.7 + our share > 0.8 ⇒ offload despite the link.
    system(&mut t, 0.7, now);
    for _ in 0..5 {
        now += 200_000;
        t.decide(&image(None), now);
    }
    let dec = t.decide(&image(None), now + 200_000);
    assert_eq!(dec.choice, Choice::Offload(EDGE), "{dec:?}");
    assert_eq!(dec.reason.why, Why::DemandAboveThreshold);
}

#[test]
fn a_late_answer_teaches_the_link_what_an_abandoned_wait_cannot() {
    use ferry_decide::{ModelId, Observation};
    let mut d = decider(false);
    let mut now = 0;
    for _ in 0..20 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    let fast = d.estimators().edge(EDGE).link.up_mbps();
    // The link falls to 2 Mbit/s; the device gives up after 100 ms (local answered first),
    // the edge's answer arrives 600 ms after the send anyway.
    for _ in 0..10 {
        d.observe(Observation::OffloadSent { target: EDGE, up_bytes: 150_000 }, now);
        d.observe(
            Observation::OffloadAbandoned { target: EDGE, model: ModelId(0), up_bytes: 150_000, down_bytes: 1_000, waited_us: 100_000 },
            now + 100_000,
        );
        d.observe(
            Observation::OffloadLate {
                target: EDGE,
                model: ModelId(0),
                form: FormId::ORIGINAL,
                up_bytes: 150_000,
                down_bytes: 1_000,
                total_us: 625_000,
                edge_queue_us: 0,
                edge_compute_us: 15_000,
            },
            now + 625_000,
        );
        now += 1_000_000;
    }
    let slow = d.estimators().edge(EDGE).link.up_mbps();
    assert!(fast > 50.0 && slow < 3.0, "{fast} -> {slow}");
    assert_eq!(d.estimators().edge(EDGE).inflight, 0);
}

#[test]
fn when_no_path_meets_the_deadline_the_least_expected_latency_wins() {
    // Local: a steady 300 ms. Edge: 150 ms on average but spread wide (alternating links), so
    // its planning quantile is above local's. With a 100 ms deadline nothing meets it; the
    // deadline is lost either way, and the faster path on average is the edge.
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 300.0, 30, &mut now);
    for i in 0..40 {
        offload(&mut d, if i % 2 == 0 { 100.0 } else { 5.0 }, 5.0, &mut now);
    }
    // Best effort: the policy's own choice (a request with a hard deadline is shed, below).
    let dec = d.decide_with(&image(Some(100)), &BEST_EFFORT, now);
    let (l, e) = (dec.reason.best_local.unwrap(), dec.reason.best_edge.unwrap());
    assert!(e.mean_ms < l.mean_ms && e.quantile_ms > l.quantile_ms, "the situation: {l:?} {e:?}");
    assert_eq!(dec.choice, Choice::Offload(EDGE), "{dec:?}");
    assert_eq!(dec.reason.why, Why::NoneMeetsDeadline);
    // With a hard deadline: both paths expect to answer after 100 + 20 ms, but the edge's
    // spread leaves it a chance (half its transfers ran at 100 Mbit/s): it is not shed, and the
    // request machine's hard deadline bounds it.
    let kept = d.decide(&image(Some(100)), now);
    assert_eq!(kept.choice, Choice::Offload(EDGE), "{kept:?}");
    // Once the edge is steadily slow too, no path can make it even optimistically: answered at
    // once, with the predictions that showed it.
    for _ in 0..40 {
        offload(&mut d, 5.0, 5.0, &mut now);
    }
    let shed = d.decide(&image(Some(100)), now);
    assert_eq!((shed.choice, shed.reason.why), (Choice::Nowhere, Why::DeadlineUnreachable), "{:?}", shed.reason);
    assert!(shed.reason.best_local.is_some() && shed.reason.best_edge.is_some());
}

#[test]
fn an_edge_predicted_slower_than_its_timeout_is_priced_as_timeout_plus_local() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 100.0, 20, &mut now);
    // 0.5 Mbit/s: 150 KB take 2.4 s, past the edge's 1 s timeout.
    for _ in 0..20 {
        offload(&mut d, 0.5, 50.0, &mut now);
    }
    let dec = d.decide(&image(None), now);
    let e = dec.reason.best_edge.unwrap();
    assert!(e.fail_p > 0.95, "{e:?}");
    // What it really costs: the timeout, then the local run (100 ms) — not the 2.4 s the
    // link alone predicts.
    assert!((e.mean_ms - 1_100.0).abs() < 60.0, "{e:?}");
    assert_eq!(dec.choice, Choice::Local(LOCAL));
}

#[test]
fn the_devices_own_upload_backlog_delays_the_next_offload() {
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 10.0, 5.0, &mut now);
    }
    let idle = d.decide(&image(None), now).reason.best_edge.unwrap().mean_ms;
    assert_eq!(d.estimators().edge(EDGE).uplink_wait_us(now), 0.0);
    // Three more 150 KB uploads leave at once on a 10 Mbit/s link: ~360 ms of bytes queued.
    for _ in 0..3 {
        d.observe(Observation::OffloadSent { target: EDGE, up_bytes: 150_000 }, now);
    }
    let wait = d.estimators().edge(EDGE).uplink_wait_us(now);
    assert!((wait - 360_000.0).abs() < 40_000.0, "{wait}");
    let behind = d.decide(&image(None), now).reason.best_edge.unwrap().mean_ms;
    assert!(behind > idle + 300.0, "{idle} -> {behind}");
    // The backlog drains with time.
    assert_eq!(d.estimators().edge(EDGE).uplink_wait_us(now + 500_000), 0.0);
}

#[test]
fn abandoned_offloads_that_never_answer_make_the_edge_look_as_bad_as_it_is() {
    // A link that collapses while local keeps answering first: every offload is abandoned and
    // then never answers within the timeout. Before OffloadExpired the edge kept its old,
    // fast estimate and the agent kept sending into the dead link.
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 40.0, 20, &mut now);
    for _ in 0..20 {
        offload(&mut d, 100.0, 5.0, &mut now);
    }
    let before = d.decide(&image(None), now).reason.best_edge.unwrap();
    for _ in 0..5 {
        d.observe(Observation::OffloadSent { target: EDGE, up_bytes: 150_000 }, now);
        let abandoned = |waited_us| Observation::OffloadAbandoned {
            target: EDGE,
            model: ModelId(0),
            up_bytes: 150_000,
            down_bytes: 1_000,
            waited_us,
        };
        d.observe(abandoned(45_000), now + 45_000);
        d.observe(
            Observation::OffloadExpired { target: EDGE, model: ModelId(0), up_bytes: 150_000, down_bytes: 1_000, waited_us: 1_000_000 },
            now + 1_000_000,
        );
        now += 200_000;
    }
    let e = d.estimators().edge(EDGE);
    assert_eq!(e.inflight, 0, "in-flight accounting settled at the abandonment");
    assert!(e.failure_probability() > 0.5, "{}", e.failure_probability());
    // The link is believed at least as slow as the waits said (≈ 1 s for 150 KB).
    let (net, _) = e.link.predict(150_000, 1_000);
    assert!(net > 10.0 * before.mean_ms as f64 * 1e3 / 2.0 && net > 500_000.0, "{before:?} -> net {net} µs");
    // Either the breaker took the edge out, or its price now sends the request local.
    let dec = d.decide(&image(None), now);
    assert_eq!(dec.choice, Choice::Local(LOCAL), "{dec:?}");
}

#[test]
fn with_no_path_meeting_the_deadline_hysteresis_weighs_expected_latency_too() {
    // Local (300 ms) is chosen first, against a slow link. Then the link becomes fast on
    // average but erratic: the edge's mean drops well below local's while its planning
    // quantile stays above. Nothing meets the 100 ms deadline; the switch must not be held
    // back by comparing quantiles (that kept a growing local queue on a slow board).
    let mut d = decider(false);
    let mut now = 0;
    system(&mut d, 0.0, now);
    local_runs(&mut d, 300.0, 30, &mut now);
    for _ in 0..20 {
        offload(&mut d, 2.0, 5.0, &mut now);
    }
    // Best effort, so that the policy decides (a hard deadline would shed these).
    assert_eq!(d.decide_with(&image(Some(100)), &BEST_EFFORT, now).choice, Choice::Local(LOCAL));
    for i in 0..60 {
        offload(&mut d, if i % 2 == 0 { 100.0 } else { 4.0 }, 5.0, &mut now);
    }
    let dec = d.decide_with(&image(Some(100)), &BEST_EFFORT, now);
    let (l, e) = (dec.reason.best_local.unwrap(), dec.reason.best_edge.unwrap());
    assert!(e.mean_ms < l.mean_ms - 50.0 && e.quantile_ms > l.quantile_ms, "the situation: {l:?} {e:?}");
    assert_eq!(dec.choice, Choice::Offload(EDGE), "{dec:?}");
}
